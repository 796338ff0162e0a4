package repo

import (
	"crypto"
	"crypto/sha256"
	"fmt"
	"slices"
	"time"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// OnlineKeys sign snapshot and timestamp. They live on the machine that
// commits (the release manager's workstation or the update server) and must
// be authorised by the root being committed.
type OnlineKeys struct {
	Snapshot  crypto.Signer
	Timestamp crypto.Signer
}

// signOnline makes snapshot prevSnap+1 naming st's exact targets bytes and
// timestamp prevTS+1 naming that snapshot's exact bytes, both expiring by
// policy from now, and stores them in st.
func (r *Repo) signOnline(st *signedState, now time.Time, prevSnap, prevTS int64, k OnlineKeys) error {
	root := st.root()
	snap := metadata.Snapshot(expiry(now, r.cfg.Expiry.For(roleSnapshot)))
	snap.Signed.Version = prevSnap + 1
	snap.Signed.Meta = map[string]*metadata.MetaFiles{"targets.json": metaFile(st.targets.Signed.Version, st.targetRaw)}
	raw, err := signMeta(root, roleSnapshot, snap, k.Snapshot)
	if err != nil {
		return err
	}
	st.snapshot, st.snapRaw = snap, raw
	ts := metadata.Timestamp(expiry(now, r.cfg.Expiry.For(roleTimestamp)))
	ts.Signed.Version = prevTS + 1
	ts.Signed.Meta = map[string]*metadata.MetaFiles{"snapshot.json": metaFile(snap.Signed.Version, raw)}
	if st.tsRaw, err = signMeta(root, roleTimestamp, ts, k.Timestamp); err != nil {
		return err
	}
	st.timestamp = ts
	return nil
}

// metaFile describes a metadata file by version, length and SHA-256, so a
// client detects a substituted file even when versions match.
func metaFile(version int64, raw []byte) *metadata.MetaFiles {
	sum := sha256.Sum256(raw)
	return &metadata.MetaFiles{Version: version, Length: int64(len(raw)), Hashes: metadata.Hashes{"sha256": sum[:]}}
}

// signMeta signs m with s after checking root authorises s for role, and
// returns the encoded file.
func signMeta[T metadata.Roles](root *rootMeta, role string, m *metadata.Metadata[T], s crypto.Signer) ([]byte, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: no %s key given", trust.ErrInvalid, role)
	}
	id, err := keys.KeyID(s.Public())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", trust.ErrInvalid, err)
	}
	if !slices.Contains(root.Signed.Roles[role].KeyIDs, id) {
		return nil, fmt.Errorf("%w: key %s may not sign %s under root %d", ErrNotAuthorised, shortID(id), role, root.Signed.Version)
	}
	ts, err := keys.TUFSigner(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", trust.ErrInvalid, err)
	}
	if _, err := m.Sign(ts); err != nil {
		return nil, fmt.Errorf("sign %s: %w", role, err)
	}
	return encodeMeta(m)
}

// Timestamp re-signs snapshot and timestamp with new versions and expiries
// (run by cron or the server, at least daily with the default 1-day
// timestamp). Devices refuse metadata past its expiry, so a repository
// nobody timestamps stops serving updates: that bounds how long an attacker
// can replay an old, revoked state (EN 303 645 5.3-2, CCDS UPC05). It
// refuses when root or targets has already expired at now, since a fresh
// timestamp would not make the repository usable.
func (r *Repo) Timestamp(now time.Time, snapshotKey, timestampKey crypto.Signer) error {
	if r.signed == nil {
		return ErrNotCommitted
	}
	old := r.signed
	st := &signedState{roots: old.roots, rootRaw: old.rootRaw, targets: old.targets, targetRaw: old.targetRaw}
	if err := r.signOnline(st, now, old.snapshot.Signed.Version, old.timestamp.Signed.Version, OnlineKeys{snapshotKey, timestampKey}); err != nil {
		return err
	}
	return r.install(st, now)
}

// install verifies st completely, writes it and makes it the signed state.
func (r *Repo) install(st *signedState, now time.Time) error {
	if err := st.verify(r.cfg.Channel); err != nil {
		return fmt.Errorf("refusing to commit: %w", err)
	}
	if err := notExpired(st, now); err != nil {
		return err
	}
	var from current
	if r.signed != nil {
		from = r.signed.current()
	}
	if err := st.write(r.path(signedDir), from); err != nil {
		return err
	}
	old := r.signed
	r.signed = st
	r.pruneOnline(old)
	return nil
}

func notExpired(st *signedState, now time.Time) error {
	if st.root().Signed.IsExpired(now) {
		return fmt.Errorf("%w: root %d expired %s; stage and sign a new root", trust.ErrExpired, st.root().Signed.Version, st.root().Signed.Expires.Format(time.RFC3339))
	}
	if st.targets.Signed.IsExpired(now) {
		return fmt.Errorf("%w: targets %d expired %s; stage and sign new targets", trust.ErrExpired, st.targets.Signed.Version, st.targets.Signed.Expires.Format(time.RFC3339))
	}
	return nil
}

// pruneOnline removes the snapshot and timestamp files that old named and
// the new state does not: a daily timestamp would otherwise leave two files
// a day in the workspace. Targets versions are kept as a record. Failures
// are harmless (the files are just unreferenced) and ignored.
func (r *Repo) pruneOnline(old *signedState) {
	if old == nil {
		return
	}
	if v := old.snapshot.Signed.Version; v != r.signed.snapshot.Signed.Version {
		removeFile(r.path(signedDir, versionedName(v, roleSnapshot)))
	}
	if v := old.timestamp.Signed.Version; v != r.signed.timestamp.Signed.Version {
		removeFile(r.path(signedDir, versionedName(v, roleTimestamp)))
	}
}
