package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/koshin-ota/koshin/deviceapi"
)

// Offline is an update instruction that came by another path than a
// check-in: an offline bundle from a USB stick or the administrator's
// laptop (package agent/bundle). It goes through the same verification and
// the same transaction as one from the server; only where the bytes come
// from differs.
type Offline struct {
	// Director is the director targets document signed for this device.
	Director []byte
	// Nonce is the nonce the document must echo: the device's current
	// offline nonce, shown by the local control API's status.
	Nonce string
	// Verifier checks Director against the device's trusted roots,
	// refreshing the image repository from the bundle.
	Verifier Verifier
	// Fetcher serves the bundle's payloads.
	Fetcher Fetcher
}

// ErrNothingToInstall is returned by InstallOffline when the verified
// instruction names nothing this device can install: every target is
// installed already, was rolled back, or has no installer.
var ErrNothingToInstall = errors.New("agent: nothing to install")

// ErrUpdateFailed wraps the reason of an offline install that started but
// ended failed or rolled back; verification failures additionally wrap
// their trust error (trust.ErrMismatch, ...).
var ErrUpdateFailed = errors.New("agent: update failed")

// InstallOffline verifies o and installs what it names, exactly as Poll
// would have done with the same director document: the engine's
// anti-rollback counters, payload verification, read-back, trial boot and
// health check all apply. The user asked for this install, so no approval
// is sought. Reports go to the outbox and reach the server at the next
// successful check-in (EN 303 645 5.9-2).
//
// It returns the target it installed, and ErrReboot when the system must
// reboot into it (the reboot has been requested); ErrInProgress while an
// update has switched the bootloader or a reboot is pending. A rejected instruction
// or payload is counted and reported like one from the server, and the
// error wraps the trust error.
func (e *Engine) InstallOffline(ctx context.Context, o Offline) (Target, error) {
	if o.Verifier == nil || o.Fetcher == nil || len(o.Director) == 0 || o.Nonce == "" {
		return Target{}, errors.New("agent: offline install needs a director document, a nonce, a verifier and a fetcher")
	}
	var t Target
	err := e.Exclusive(ctx, func() error {
		if e.pendingReboot {
			return fmt.Errorf("%w: the system is rebooting into an update", ErrInProgress)
		}
		if e.Restricted() {
			// Only the update server's updates install until the alert
			// is cleared (EN 303 645 5.7-2).
			return ErrRestricted
		}
		// The verifier and fetcher are read only inside the exclusive
		// section, so swapping them for this one call cannot affect a
		// concurrent poll; the bundle's are used for nothing else.
		saved := e.cfg
		e.cfg.Verifier, e.cfg.Fetcher = o.Verifier, o.Fetcher
		defer func() { e.cfg.Verifier, e.cfg.Fetcher = saved.Verifier, saved.Fetcher }()
		var err error
		t, err = e.offline(ctx, o)
		return err
	})
	return t, err
}

func (e *Engine) offline(ctx context.Context, o Offline) (Target, error) {
	tx := e.j.Tx
	if tx != nil && !tx.State.Terminal() && tx.State != StateDownloading && tx.State != StateVerifying {
		return Target{}, fmt.Errorf("%w: transaction %s is %s", ErrInProgress, tx.ID, tx.State)
	}
	installed, err := e.installedCounters()
	if err != nil {
		return Target{}, e.offlineRejected(ctx, err)
	}
	targets, err := o.Verifier.Check(ctx, o.Director, o.Nonce, installed)
	if err != nil {
		return Target{}, e.offlineRejected(ctx, err)
	}
	t := e.pick(targets)
	if tx != nil && !tx.State.Terminal() {
		if t != nil && t.Name == tx.Target.Name && t.SHA256() == tx.Target.SHA256() && t.Length == tx.Target.Length {
			// The download the server started is the bundle's payload:
			// continue it from the bundle (the checkpoint is bound to the
			// signed hashes, which are the same).
			tx.Target = *t
			return *t, e.outcome(e.resumeTx(ctx, tx))
		}
		if err := e.fail(ctx, tx, deviceapi.EventFailed, "cancelled", "superseded by an offline install"); err != nil {
			return Target{}, err
		}
	}
	if t == nil {
		return Target{}, ErrNothingToInstall
	}
	return *t, e.outcome(e.begin(ctx, *t))
}

// offlineRejected reports a failed verification like Poll does and, unlike
// Poll, returns it: the authenticated local user who offered the bundle
// needs to know that it was refused and why (a stale nonce, an expired
// timestamp) to fix it.
func (e *Engine) offlineRejected(ctx context.Context, err error) error {
	if rerr := e.rejected(ctx, err); rerr != nil {
		return rerr
	}
	return fmt.Errorf("%w: %w", ErrUpdateFailed, err)
}

// outcome turns a transaction that ended failed or rolled back into an
// error wrapping the trust error its reason names, if any.
func (e *Engine) outcome(err error) error {
	if err != nil || e.j == nil || e.j.Tx == nil {
		return err
	}
	tx := e.j.Tx
	if tx.State != StateFailed && tx.State != StateRolledBack {
		return nil
	}
	for _, r := range rejections {
		if tx.Reason == r.Error() {
			return fmt.Errorf("%w: %s: %w: %s", ErrUpdateFailed, tx.State, r, tx.Detail)
		}
	}
	return fmt.Errorf("%w: %s: %s: %s", ErrUpdateFailed, tx.State, tx.Reason, tx.Detail)
}
