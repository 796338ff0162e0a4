package repo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/koshin-ota/koshin/internal/atomicfile"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Publish writes the signed state to outDir in TUF's consistent-snapshot
// layout, ready for any static file server, CDN or mirror:
//
//	N.root.json           every root version (devices walk the chain)
//	root.json             the latest root, for provisioning
//	N.targets.json        the current targets
//	N.snapshot.json       the current snapshot
//	targets/SHA256.NAME   every current target's payload
//	targets/SHA256.cdx.json, targets/SHA256.csaf.json
//	                      the SBOMs and advisories targets sign (document.go)
//	timestamp.json        written last
//
// Files are only ever added, and timestamp.json (the one name a client
// fetches without a version or hash) is replaced atomically after everything
// it leads to is in place, so a client reading during a publish sees either
// the old state or the new one. Older versioned files are left for clients
// midway through an update. A versioned file that already exists with other
// content is an error (ErrCorrupt): published versions never change.
// Publish is idempotent.
func (r *Repo) Publish(outDir string) error {
	if r.signed == nil {
		return ErrNotCommitted
	}
	st := r.signed
	if err := os.MkdirAll(filepath.Join(outDir, "targets"), pubDirMode); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	for i, raw := range st.rootRaw {
		if err := publishImmutable(filepath.Join(outDir, versionedName(int64(i+1), roleRoot)), raw); err != nil {
			return err
		}
	}
	if err := r.publishPayloads(outDir, st.targets.Signed.Targets); err != nil {
		return err
	}
	if err := r.publishDocuments(outDir, st.targets.Signed.Targets); err != nil {
		return err
	}
	steps := []func() error{
		func() error {
			return publishImmutable(filepath.Join(outDir, versionedName(st.targets.Signed.Version, roleTargets)), st.targetRaw)
		},
		func() error {
			return publishImmutable(filepath.Join(outDir, versionedName(st.snapshot.Signed.Version, roleSnapshot)), st.snapRaw)
		},
		func() error { return publishReplace(filepath.Join(outDir, "root.json"), st.rootRaw[len(st.rootRaw)-1]) },
		func() error { return crashPoint("publish:timestamp") },
		func() error { return publishReplace(filepath.Join(outDir, "timestamp.json"), st.tsRaw) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// publishImmutable writes a versioned file once; an existing file must be
// identical.
func publishImmutable(name string, data []byte) error {
	old, err := readLimited(name, maxMetaSize)
	switch {
	case err == nil && bytes.Equal(old, data):
		return nil
	case err == nil:
		return fmt.Errorf("%w: %s is already published with other content; published versions must never change", ErrCorrupt, name)
	case !isNotExist(err):
		return fmt.Errorf("publish: %w", err)
	}
	return atomicfile.WriteFile(name, data, pubFileMode)
}

// publishReplace atomically replaces an unversioned file if it differs.
func publishReplace(name string, data []byte) error {
	if old, err := readLimited(name, maxMetaSize); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return atomicfile.WriteFile(name, data, pubFileMode)
}

func (r *Repo) publishPayloads(outDir string, targets map[string]*metadata.TargetFiles) error {
	dir := filepath.Join(outDir, "targets")
	for _, name := range slices.Sorted(maps.Keys(targets)) {
		if err := r.publishPayload(dir, name, targets[name]); err != nil {
			return err
		}
	}
	return atomicfile.SyncDir(dir)
}

// publishPayload hard-links the stored payload into the published tree when
// the two are on one file system, else copies it; either way the payload's
// hash is verified first, so a damaged store is never published. An
// existing published file of the signed length is kept as is.
func (r *Repo) publishPayload(dir, name string, tf *metadata.TargetFiles) error {
	if err := ValidateTargetName(name); err != nil {
		return err
	}
	dst := filepath.Join(dir, payloadName(name, tf))
	if fi, err := os.Stat(dst); err == nil {
		if fi.Size() != tf.Length {
			return fmt.Errorf("%w: published %s has %d bytes, signed %d", ErrCorrupt, dst, fi.Size(), tf.Length)
		}
		return nil
	}
	src := r.payloadPath(hex.EncodeToString(tf.Hashes["sha256"]))
	if err := verifyPayload(src, tf); err != nil {
		return err
	}
	if os.Link(src, dst) == nil {
		return nil
	}
	return copyPayload(dst, src, tf)
}

func verifyPayload(name string, tf *metadata.TargetFiles) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("%w: payload store: %v", ErrCorrupt, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, f, make([]byte, copyBufSize))
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if n != tf.Length {
		return fmt.Errorf("%w: stored payload %s has %d bytes, signed %d", ErrCorrupt, name, n, tf.Length)
	}
	return checkSum(h, tf.Hashes["sha256"])
}

func copyPayload(dst, src string, tf *metadata.TargetFiles) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("%w: payload store: %v", ErrCorrupt, err)
	}
	defer f.Close()
	return atomicfile.Write(dst, pubFileMode, func(w io.Writer) error {
		return hashingCopy(w, io.LimitReader(f, tf.Length+1), tf.Hashes["sha256"])
	})
}
