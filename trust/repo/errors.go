package repo

import "errors"

// Errors of the signing side. Invalid input is reported with trust.ErrInvalid,
// a channel mismatch with trust.ErrWrongChannel, a non-monotonic release
// counter with trust.ErrRollback and an incomplete role with
// trust.ErrThreshold, so one errors.Is vocabulary covers both sides.
var (
	// ErrNotAuthorised: the key is not listed for the role it tried to sign.
	ErrNotAuthorised = errors.New("key not authorised for role")
	// ErrDuplicate: a target name, key or signature that is already there.
	ErrDuplicate = errors.New("already present")
	// ErrUnknown: a target or key that is not there.
	ErrUnknown = errors.New("not present")
	// ErrNothingStaged: the role has no staged changes to sign or export.
	ErrNothingStaged = errors.New("nothing staged")
	// ErrNothingToCommit: no staged role has reached its threshold.
	ErrNothingToCommit = errors.New("nothing to commit")
	// ErrNotCommitted: the operation needs a signed state and the repository
	// has never been committed.
	ErrNotCommitted = errors.New("repository has no signed state yet")
	// ErrBusy: another process holds the repository's lock.
	ErrBusy = errors.New("repository is in use by another process")
	// ErrCorrupt: the workspace on disk is inconsistent (its signed state
	// does not verify, or a published file would change).
	ErrCorrupt = errors.New("repository state is inconsistent")
)
