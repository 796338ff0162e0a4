package trusttest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// RootPath and RolePath name published metadata files.
func RootPath(version int64) string { return fmt.Sprintf("metadata/%d.root.json", version) }

// RolePath is metadata/N.role.json, or metadata/role.json for version 0
// (timestamp, and every role without consistent snapshots).
func RolePath(role string, version int64) string {
	if version == 0 {
		return "metadata/" + role + ".json"
	}
	return fmt.Sprintf("metadata/%d.%s.json", version, role)
}

// TargetPath is the consistent-snapshot file name of a payload:
// targets/DIR/HEX.BASE.
func TargetPath(name string, hash []byte) string {
	dir, file := path.Split(name)
	return "targets/" + dir + hex.EncodeToString(hash) + "." + file
}

// Sign replaces md's signatures with those of signers and returns the
// serialized metadata.
func Sign[T metadata.Roles](tb testing.TB, md *metadata.Metadata[T], signers ...signature.Signer) []byte {
	tb.Helper()
	md.ClearSignatures()
	for _, s := range signers {
		if _, err := md.Sign(s); err != nil {
			tb.Fatal(err)
		}
	}
	data, err := md.ToBytes(false)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// publishRoot signs the working root with the current root keys and, after
// RotateKeys(root), the previous ones too.
func (r *Repo) publishRoot() {
	signers := append(append([]signature.Signer(nil), r.prevRoot...), r.Signers[metadata.ROOT]...)
	r.prevRoot = nil
	r.SetFile(RootPath(r.Root.Signed.Version), Sign(r.tb, r.Root, signers...))
}

// PublishRoot publishes the working root as the next version.
func (r *Repo) PublishRoot() {
	r.tb.Helper()
	r.Root.Signed.Version++
	r.publishRoot()
}

// Publish publishes targets, snapshot and timestamp as their next versions.
func (r *Repo) Publish() {
	r.tb.Helper()
	r.PublishTargets()
	r.PublishSnapshot()
	r.PublishTimestamp()
}

// PublishTargets signs and publishes the next targets version (the
// snapshot still names the previous one until PublishSnapshot).
func (r *Repo) PublishTargets() {
	r.tb.Helper()
	r.bump(metadata.TARGETS, &r.Targets.Signed.Version)
	r.publishRole(metadata.TARGETS, r.Targets.Signed.Version, Sign(r.tb, r.Targets, r.Signers[metadata.TARGETS]...))
}

// PublishSnapshot names the current targets version and publishes the
// next snapshot version.
func (r *Repo) PublishSnapshot() {
	r.tb.Helper()
	v := r.Targets.Signed.Version
	r.Snapshot.Signed.Meta["targets.json"] = r.metaFile(metadata.TARGETS, v)
	r.bump(metadata.SNAPSHOT, &r.Snapshot.Signed.Version)
	r.publishRole(metadata.SNAPSHOT, r.Snapshot.Signed.Version, Sign(r.tb, r.Snapshot, r.Signers[metadata.SNAPSHOT]...))
}

// PublishTimestamp names the current snapshot version and publishes the
// next timestamp version.
func (r *Repo) PublishTimestamp() {
	r.tb.Helper()
	v := r.Snapshot.Signed.Version
	r.Timestamp.Signed.Meta["snapshot.json"] = r.metaFile(metadata.SNAPSHOT, v)
	r.bump(metadata.TIMESTAMP, &r.Timestamp.Signed.Version)
	r.SetFile(RolePath(metadata.TIMESTAMP, 0), Sign(r.tb, r.Timestamp, r.Signers[metadata.TIMESTAMP]...))
}

// bump increments a version except on a role's first publication.
func (r *Repo) bump(role string, version *int64) {
	if r.published[role] {
		*version++
	}
	r.published[role] = true
}

func (r *Repo) publishRole(role string, version int64, data []byte) {
	if r.Root.Signed.ConsistentSnapshot {
		r.SetFile(RolePath(role, version), data)
	} else {
		r.SetFile(RolePath(role, 0), data)
	}
}

func (r *Repo) metaFile(role string, version int64) *metadata.MetaFiles {
	m := metadata.MetaFile(version)
	if !r.opt.MetaHashes {
		return m
	}
	p := RolePath(role, version)
	if !r.Root.Signed.ConsistentSnapshot {
		p = RolePath(role, 0)
	}
	data := r.File(p)
	sum := sha256.Sum256(data)
	m.Length, m.Hashes = int64(len(data)), metadata.Hashes{"sha256": sum[:]}
	return m
}

// AddTarget adds a payload to the working targets (published by the next
// Publish) and serves it at once. custom may be nil (generic TUF target).
func (r *Repo) AddTarget(name string, data []byte, custom *trust.TargetCustom) *metadata.TargetFiles {
	r.tb.Helper()
	tf, err := metadata.TargetFile().FromBytes(name, data, r.opt.TargetHashes...)
	if err != nil {
		r.tb.Fatal(err)
	}
	if custom != nil {
		tf.Custom = custom.Raw()
	}
	r.Targets.Signed.Targets[name] = tf
	if !r.Root.Signed.ConsistentSnapshot {
		r.SetFile("targets/"+name, data)
		return tf
	}
	for _, h := range tf.Hashes {
		r.SetFile(TargetPath(name, h), data)
	}
	return tf
}

// RemoveTarget drops a target from the working targets (revocation).
func (r *Repo) RemoveTarget(name string) {
	delete(r.Targets.Signed.Targets, name)
}

// SetFloors sets the signed per-hardware release-counter floors.
func (r *Repo) SetFloors(floors map[string]uint64) {
	trust.SetFloors(&r.Targets.Signed, floors)
}
