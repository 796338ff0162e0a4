package httpapi

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"

	"github.com/koshin-ota/koshin"
)

// ImageRepo is a published image repository: the directory that
// repo.Repo.Publish writes (N.root.json, timestamp.json, N.snapshot.json,
// N.targets.json, targets/HASH.NAME), or the same files in a blob store
// (an S3 bucket that `koshin repo publish-s3` filled), which every server
// replica reads.
type ImageRepo struct {
	// Dir is the published directory; unused when Blobs is set.
	Dir string
	// Blobs, if set, holds the published repository instead of Dir
	// (imageblob.go).
	Blobs koshin.BlobStore
	// Presign, if set, makes payload downloads a redirect to a URL valid
	// for PresignTTL (DefaultPresignTTL if zero) from which the device
	// downloads directly; nil streams payloads from Blobs.
	Presign    koshin.BlobPresigner
	PresignTTL time.Duration
	// TrustedRoot is the image root the server trusts when it imports
	// releases, normally version 1 as provisioned into devices. Nil means
	// Dir/1.root.json, trusted on first use.
	TrustedRoot []byte
}

// maxMetaFile bounds one metadata file read for an import.
const maxMetaFile = 32 << 20

// serve sends one file of the repository. os.OpenInRoot confines the name
// to Dir even if a symlink or a bug let a ".." through.
func (ir *ImageRepo) serve(w http.ResponseWriter, r *http.Request, name, ctype string) error {
	if ir.Blobs != nil {
		return ir.serveBlob(w, r, name, ctype)
	}
	f, err := os.OpenInRoot(ir.Dir, name)
	if err != nil {
		return errNotFound
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return errNotFound
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", fi.ModTime(), f)
	return nil
}

func (ir *ImageRepo) read(name string) ([]byte, error) {
	if ir.Blobs != nil {
		return ir.readBlob(name)
	}
	f, err := os.OpenInRoot(ir.Dir, name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetaFile+1))
	if err == nil && len(b) > maxMetaFile {
		err = fmt.Errorf("%s is larger than %d bytes", name, maxMetaFile)
	}
	return b, err
}

// Targets runs the TUF client workflow over the published files at now:
// walk the root chain from the trusted root, then timestamp, snapshot and
// targets, checking signatures, thresholds, versions and expiry. The server
// imports only what a device would accept.
func (ir *ImageRepo) Targets(now time.Time) (*metadata.TargetsType, error) {
	root := ir.TrustedRoot
	if root == nil {
		var err error
		if root, err = ir.read("1.root.json"); err != nil {
			return nil, repoError("read trusted root", err)
		}
	}
	tm, err := trustedmetadata.New(root)
	if err != nil {
		return nil, repoError("trusted root", err)
	}
	tm.RefTime = now
	if err := ir.walkRoots(tm); err != nil {
		return nil, err
	}
	return ir.topLevel(tm)
}

const maxRootWalk = 1024

func (ir *ImageRepo) walkRoots(tm *trustedmetadata.TrustedMetadata) error {
	for i := 0; i < maxRootWalk; i++ {
		next := tm.Root.Signed.Version + 1
		data, err := ir.read(strconv.FormatInt(next, 10) + ".root.json")
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return repoError("read root", err)
		}
		if _, err := tm.UpdateRoot(data); err != nil {
			return repoError(fmt.Sprintf("root %d", next), err)
		}
	}
	return koshin.Errorf(koshin.EINVALID, "The image repository has more than %d root versions.", maxRootWalk)
}

func (ir *ImageRepo) topLevel(tm *trustedmetadata.TrustedMetadata) (*metadata.TargetsType, error) {
	data, err := ir.read("timestamp.json")
	if err != nil {
		return nil, repoError("read timestamp", err)
	}
	if _, err := tm.UpdateTimestamp(data); err != nil {
		return nil, repoError("timestamp", err)
	}
	consistent := tm.Root.Signed.ConsistentSnapshot
	if data, err = ir.read(roleFile(consistent, tm.Timestamp.Signed.Meta["snapshot.json"], "snapshot")); err != nil {
		return nil, repoError("read snapshot", err)
	}
	if _, err := tm.UpdateSnapshot(data, false); err != nil {
		return nil, repoError("snapshot", err)
	}
	if data, err = ir.read(roleFile(consistent, tm.Snapshot.Signed.Meta["targets.json"], "targets")); err != nil {
		return nil, repoError("read targets", err)
	}
	t, err := tm.UpdateTargets(data)
	if err != nil {
		return nil, repoError("targets", err)
	}
	return &t.Signed, nil
}

func roleFile(consistent bool, m *metadata.MetaFiles, role string) string {
	if consistent && m != nil {
		return strconv.FormatInt(m.Version, 10) + "." + role + ".json"
	}
	return role + ".json"
}

// repoError reports a repository that does not verify. The message names
// the step and go-tuf's reason; it goes to operators, who need it.
func repoError(step string, err error) error {
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300]
	}
	return &koshin.Error{Code: koshin.EINVALID, Message: fmt.Sprintf("Image repository does not verify: %s: %s.", step, msg), Err: err}
}
