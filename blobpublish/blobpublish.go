// Package blobpublish uploads a published image repository (the directory
// `koshin repo publish` writes, TUF consistent-snapshot layout) to a
// koshin.BlobStore, normally an S3 bucket that devices download from
// directly or through a CDN.
//
// The upload keeps the guarantee the local publish gives: a client reading
// during an upload sees the old repository or the new one, never a mix.
// Everything a timestamp leads to goes up first — payloads
// (targets/HASH.NAME), root versions, targets, then the snapshot — and
// timestamp.json, the only file a client fetches without a version or hash
// in its name, goes up last. S3 reads are strongly consistent after a
// write, so once timestamp.json is replaced every file it names is there.
// Versioned files and payloads are immutable: one already in the store with
// other content is an error (ECONFLICT), never overwritten. Uploading again
// is cheap and harmless: what is already there is skipped.
//
// The store is untrusted: devices verify everything against the signed
// metadata, so this package only has to be careful about ordering and
// about not publishing a damaged payload (it checks each payload's hash
// against its name while uploading).
package blobpublish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/koshin-ota/koshin"
)

// maxMetaSize bounds a metadata file compared with the stored copy (the
// repository's own limit).
const maxMetaSize = 32 << 20

// Options tune an upload.
type Options struct {
	// Progress, if set, is called after each file of the directory, with
	// its blob name and size and whether it was uploaded (false: the
	// store already had it).
	Progress func(name string, size int64, uploaded bool)
}

// Result counts what an upload did.
type Result struct {
	Uploaded  int   // files uploaded
	Unchanged int   // files the store already held
	Bytes     int64 // bytes uploaded
}

// stages of an upload, in order.
const (
	stagePayload  = iota // targets/HASH.NAME
	stageMeta            // N.root.json, N.targets.json, delegated N.ROLE.json
	stageSnapshot        // N.snapshot.json
	stageRoot            // root.json (latest root, for provisioning)
	stageTimestamp
)

var (
	versionedMeta = regexp.MustCompile(`^[1-9][0-9]{0,15}\.([a-z][a-z0-9_-]{0,63})\.json$`)
	payloadFile   = regexp.MustCompile(`^targets/((?:[0-9a-f]{64})|(?:[0-9a-f]{128}))\.[A-Za-z0-9][A-Za-z0-9._+-]*$`)
)

type file struct {
	rel   string // path in the directory, '/'-separated
	size  int64
	stage int
}

// immutable files never change once published.
func (f file) immutable() bool { return f.stage <= stageSnapshot }

// Dir uploads the published repository in dir to store under prefix ("" or
// a blob-name prefix; a missing trailing '/' is added). It stops at the
// first error; what it uploaded until then is harmless, because
// timestamp.json still leads to the previous repository.
func Dir(ctx context.Context, store koshin.BlobStore, dir, prefix string, opts Options) (Result, error) {
	var res Result
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	if err := koshin.ValidateBlobPrefix(prefix); err != nil {
		return res, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return res, fmt.Errorf("publish %s: %w", dir, err)
	}
	defer root.Close()
	files, err := scan(root)
	if err != nil {
		return res, fmt.Errorf("publish %s: %w", dir, err)
	}
	have, err := existing(ctx, store, prefix)
	if err != nil {
		return res, err
	}
	for _, f := range files {
		uploaded, err := publishFile(ctx, store, root, prefix, f, have)
		if err != nil {
			return res, err
		}
		if uploaded {
			res.Uploaded++
			res.Bytes += f.size
		} else {
			res.Unchanged++
		}
		if opts.Progress != nil {
			opts.Progress(prefix+f.rel, f.size, uploaded)
		}
	}
	return res, nil
}

// scan lists the directory's files in upload order and refuses anything
// that is not part of the layout, so that no stray file is published.
func scan(root *os.Root) ([]file, error) {
	var files, unexpected []file
	err := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != "." {
			// Temporary files of an interrupted local publish.
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if p != "." && p != "targets" {
				unexpected = append(unexpected, file{rel: p + "/"})
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file (symlinks are not published)", p)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		f := file{rel: p, size: fi.Size(), stage: classify(p)}
		if f.stage < 0 || koshin.ValidateBlobName(p) != nil {
			unexpected = append(unexpected, f)
			return nil
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(unexpected) > 0 {
		names := make([]string, 0, 5)
		for _, f := range unexpected[:min(5, len(unexpected))] {
			names = append(names, f.rel)
		}
		return nil, koshin.Errorf(koshin.EINVALID, "The directory holds files that are not part of a published repository: %s.", strings.Join(names, ", "))
	}
	if !slices.ContainsFunc(files, func(f file) bool { return f.stage == stageTimestamp }) ||
		!slices.ContainsFunc(files, func(f file) bool { return strings.HasSuffix(f.rel, ".root.json") && f.stage == stageMeta }) {
		return nil, koshin.Errorf(koshin.EINVALID, "The directory is not a published repository: it needs timestamp.json and 1.root.json (run `koshin repo publish`).")
	}
	slices.SortFunc(files, func(a, b file) int {
		if a.stage != b.stage {
			return a.stage - b.stage
		}
		return strings.Compare(a.rel, b.rel)
	})
	return files, nil
}

// classify returns a file's upload stage, or -1 if it is not part of the
// layout.
func classify(rel string) int {
	switch {
	case rel == "timestamp.json":
		return stageTimestamp
	case rel == "root.json":
		return stageRoot
	case payloadFile.MatchString(rel):
		return stagePayload
	}
	m := versionedMeta.FindStringSubmatch(rel)
	switch {
	case m == nil || m[1] == "timestamp":
		return -1
	case m[1] == "snapshot":
		return stageSnapshot
	}
	return stageMeta
}

// existing lists what the store already holds under prefix.
func existing(ctx context.Context, store koshin.BlobStore, prefix string) (map[string]int64, error) {
	have := map[string]int64{}
	for bi, err := range store.List(ctx, prefix) {
		if err != nil {
			return nil, err
		}
		have[bi.Name] = bi.Size
	}
	return have, nil
}

// publishFile uploads one file unless the store already holds it, and
// reports whether it uploaded.
func publishFile(ctx context.Context, store koshin.BlobStore, root *os.Root, prefix string, f file, have map[string]int64) (bool, error) {
	name := prefix + f.rel
	size, present := have[name]
	switch {
	case present && f.stage == stagePayload && size == f.size:
		// Content-addressed: same name and length is the same payload,
		// and devices check the hash anyway.
		return false, nil
	case present && f.stage == stagePayload:
		return false, immutableError(name)
	case present && size == f.size:
		same, err := sameContent(ctx, store, root, name, f)
		if err != nil || same {
			return false, err
		}
		if f.immutable() {
			return false, immutableError(name)
		}
	case present && f.immutable():
		return false, immutableError(name)
	}
	return true, upload(ctx, store, root, name, f)
}

func immutableError(name string) error {
	return koshin.Errorf(koshin.ECONFLICT, "%s is already published with other content; published versions never change.", name)
}

// sameContent compares a small metadata file with the stored copy.
func sameContent(ctx context.Context, store koshin.BlobStore, root *os.Root, name string, f file) (bool, error) {
	if f.size > maxMetaSize {
		return false, koshin.Errorf(koshin.EINVALID, "%s is larger than %d bytes.", f.rel, maxMetaSize)
	}
	local, err := root.ReadFile(f.rel)
	if err != nil {
		return false, fmt.Errorf("publish: %w", err)
	}
	rc, _, err := store.Open(ctx, name, 0)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	stored, err := io.ReadAll(io.LimitReader(rc, maxMetaSize+1))
	if err != nil {
		return false, koshin.Internal(fmt.Errorf("read %s from the store: %w", name, err))
	}
	return bytes.Equal(local, stored), nil
}

// upload streams one file to the store. A payload's content must match the
// hash in its name; if it does not, the uploaded copy is deleted again
// (nothing refers to it yet: timestamp.json is uploaded last).
func upload(ctx context.Context, store koshin.BlobStore, root *os.Root, name string, f file) error {
	fh, err := root.Open(f.rel)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	defer fh.Close()
	var r io.Reader = fh
	var h hash.Hash
	var want []byte
	if f.stage == stagePayload {
		hexSum := payloadFile.FindStringSubmatch(f.rel)[1]
		want, _ = hex.DecodeString(hexSum)
		if len(hexSum) == 64 {
			h = sha256.New()
		} else {
			h = sha512.New()
		}
		r = io.TeeReader(fh, h)
	}
	if err := store.Put(ctx, name, r, f.size); err != nil {
		return err
	}
	if h != nil && !bytes.Equal(h.Sum(nil), want) {
		if derr := store.Delete(ctx, name); derr != nil {
			return errors.Join(corruptError(f.rel), derr)
		}
		return corruptError(f.rel)
	}
	return nil
}

func corruptError(rel string) error {
	return koshin.Errorf(koshin.EINVALID, "%s does not match the hash in its name; the published directory is damaged (publish it again with `koshin repo publish`).", rel)
}

// CacheControl is the Cache-Control header for a published file, for a
// CDN in front of the store: versioned metadata and payloads never change
// and may be cached for a year; timestamp.json and root.json change in
// place and must be revalidated on every request (a stale timestamp would
// hold devices back until it expires).
func CacheControl(name string) string {
	base := name[strings.LastIndexByte(name, '/')+1:]
	switch {
	case base == "timestamp.json" || base == "root.json":
		return "no-cache"
	case versionedMeta.MatchString(base) || strings.Contains(name, "targets/") && payloadFile.MatchString(name[strings.Index(name, "targets/"):]):
		return "public, max-age=31536000, immutable"
	}
	return ""
}
