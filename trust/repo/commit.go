package repo

import (
	"errors"
	"fmt"
	"time"

	"github.com/koshin-ota/koshin/trust"
)

// Committed says what a Commit promoted.
type Committed struct {
	Root, Targets bool
	Versions      Versions
}

// Versions are the versions of the signed state.
type Versions struct {
	Root, Targets, Snapshot, Timestamp int64
}

// Commit promotes the staged roles that have reached their thresholds to
// the signed state and signs a new snapshot and timestamp over them with
// the online keys. Everything is checked the way a device would check it
// before anything is written, so the signed state is always one a device
// accepts:
//   - a new root is verified by the previous root's threshold and its own;
//   - the targets committed (new or kept) must verify under the root that
//     will be current — a rotation that retires the targets keys must be
//     committed together with targets signed by the new keys;
//   - snapshot names these exact targets bytes, timestamp that exact
//     snapshot;
//   - nothing committed is already expired at now.
//
// The write is crash-safe: signed/current.json is replaced last, so a crash
// at any instant leaves the previous state. With nothing complete to
// promote it returns ErrNothingToCommit and changes nothing.
func (r *Repo) Commit(now time.Time, online OnlineKeys) (Committed, error) {
	st, done, err := r.promote()
	if err != nil {
		return done, err
	}
	var prevSnap, prevTS int64
	if r.signed != nil {
		prevSnap, prevTS = r.signed.snapshot.Signed.Version, r.signed.timestamp.Signed.Version
	}
	if err := r.signOnline(st, now, prevSnap, prevTS, online); err != nil {
		return done, err
	}
	if err := r.install(st, now); err != nil {
		return done, err
	}
	r.dropCommitted(done)
	done.Versions = r.Versions()
	return done, nil
}

// promote assembles the new root chain and targets from the complete staged
// roles.
func (r *Repo) promote() (*signedState, Committed, error) {
	var done Committed
	st := &signedState{}
	if r.signed != nil {
		st.roots, st.rootRaw = r.signed.roots, r.signed.rootRaw
		st.targets, st.targetRaw = r.signed.targets, r.signed.targetRaw
	}
	if err := r.promoteRoot(st, &done); err != nil {
		return nil, done, err
	}
	if err := r.promoteTargets(st, &done); err != nil {
		return nil, done, err
	}
	if !done.Root && !done.Targets {
		return nil, done, r.whyNothing()
	}
	if r.signed == nil && !(done.Root && done.Targets) {
		return nil, done, fmt.Errorf("%w: the first commit needs root 1 and targets 1 both fully signed", trust.ErrThreshold)
	}
	if done.Root && !done.Targets && st.root().VerifyDelegate(roleTargets, st.targets) != nil {
		return nil, done, fmt.Errorf("%w: root %d no longer authorises the keys that signed targets %d; sign the staged targets with the new keys (stage them first if needed) and commit both together",
			trust.ErrThreshold, st.root().Signed.Version, st.targets.Signed.Version)
	}
	return st, done, nil
}

func (r *Repo) promoteRoot(st *signedState, done *Committed) error {
	if r.sRoot == nil || verifyRootStep(r.signedRoot(), r.sRoot) != nil {
		return nil
	}
	if err := checkRootUsable(&r.sRoot.Signed, imageRoles); err != nil {
		return err
	}
	raw, err := encodeMeta(r.sRoot)
	if err != nil {
		return err
	}
	st.roots = append(st.roots[:len(st.roots):len(st.roots)], r.sRoot)
	st.rootRaw = append(st.rootRaw[:len(st.rootRaw):len(st.rootRaw)], raw)
	done.Root = true
	return nil
}

func (r *Repo) promoteTargets(st *signedState, done *Committed) error {
	if r.sTarget == nil || len(st.roots) == 0 || st.root().VerifyDelegate(roleTargets, r.sTarget) != nil {
		return nil
	}
	raw, err := encodeMeta(r.sTarget)
	if err != nil {
		return err
	}
	st.targets, st.targetRaw = r.sTarget, raw
	done.Targets = true
	return nil
}

// whyNothing explains an empty commit with the signature counts.
func (r *Repo) whyNothing() error {
	var errs []error
	for _, role := range []string{roleRoot, roleTargets} {
		if !r.staged(role) {
			continue
		}
		s, err := r.SignatureStatus(role)
		if err != nil {
			return err
		}
		msg := fmt.Sprintf("%s %d has %s", role, s.Version, s.summary())
		if s.Complete() {
			msg += " but needs a complete root to be committed with"
		}
		errs = append(errs, errors.New(msg))
	}
	if len(errs) == 0 {
		return fmt.Errorf("%w: nothing is staged", ErrNothingToCommit)
	}
	return fmt.Errorf("%w: %w", ErrNothingToCommit, errors.Join(errs...))
}

func (s Signatures) summary() string {
	out := fmt.Sprintf("%d of %d signatures", s.Have, s.Need)
	if s.PrevNeed > 0 {
		out += fmt.Sprintf(" (and %d of %d from the previous root's keys)", s.PrevHave, s.PrevNeed)
	}
	return out
}

// dropCommitted removes the staged files that are now signed. A crash
// before this is harmless: Open discards staged versions that are not newer
// than the signed ones.
func (r *Repo) dropCommitted(done Committed) {
	if done.Root {
		removeFile(r.stagedPath(roleRoot))
		r.sRoot = nil
	}
	if done.Targets {
		removeFile(r.stagedPath(roleTargets))
		r.sTarget = nil
	}
}

// Versions returns the versions of the signed state (zero before the first
// commit).
func (r *Repo) Versions() Versions {
	if r.signed == nil {
		return Versions{}
	}
	c := r.signed.current()
	return Versions{Root: c.Root, Targets: c.Targets, Snapshot: c.Snapshot, Timestamp: c.Timestamp}
}
