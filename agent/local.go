package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/koshin-ota/koshin/deviceapi"
)

// This file holds what the local control API (package agent/control) asks
// of the engine: reports of the user's decisions and settings, and the
// engine's part of a factory reset. Each runs inside Exclusive, like an
// update step (CCDS UPE10).

// ErrInProgress is returned by operations that cannot run while an update
// has switched the bootloader or is being applied in place; they can run
// again once it committed or rolled back.
var ErrInProgress = errors.New("agent: an update is being applied")

// resetFlushTimeout bounds the attempt to deliver the factory-reset report
// under the old identity: the reset must not wait for an unreachable server
// (EN 303 645 5.9-2), and the report is not needed for the reset itself.
const resetFlushTimeout = 15 * time.Second

func (e *Engine) settings() deviceapi.Settings {
	if e.cfg.CurrentSettings != nil {
		return e.cfg.CurrentSettings()
	}
	return e.cfg.Settings
}

func (e *Engine) lockouts() uint32 {
	if e.cfg.Lockouts != nil {
		return e.cfg.Lockouts()
	}
	return 0
}

// Report queues an event that no update transaction produced — a settings
// change, the user's decision on a pending update, a lockout of the local
// control API — for delivery with the next check-in. Only Type, Target,
// Reason and Detail of ev are used; ID and Time are the engine's.
func (e *Engine) Report(ctx context.Context, ev deviceapi.Event) error {
	return e.Exclusive(ctx, func() error {
		ev.ID, ev.Time = e.newID()+"-"+string(ev.Type), e.cfg.Now().UTC()
		ev.Reason, ev.Detail = truncate(ev.Reason, maxReason), truncate(ev.Detail, maxDetail)
		ev.Target = truncate(ev.Target, maxTargetName)
		// Checked here so that a bad event is the caller's error, not a
		// journal that refuses to save.
		if err := ev.Validate(); err != nil {
			return err
		}
		e.queue(nil, ev.Type, ev.Reason, ev.Detail)
		e.j.Outbox[len(e.j.Outbox)-1].Target = ev.Target
		return e.save()
	})
}

// FactoryReset is the engine's part of a factory reset (EN 303 645 5.11-1,
// CCDS HLC06, STS08). In one exclusive section it
//
//  1. cancels a download that switched nothing yet, and refuses with
//     ErrInProgress while an update has switched something;
//  2. queues a factory-reset report and tries, briefly, to deliver it while
//     the old identity can still authenticate, so the fleet operator learns
//     that this identity is gone;
//  3. runs erase, the caller's erasure of user data and keys and the
//     rotation of the identity;
//  4. forgets what belonged to the old identity: undelivered reports (a new
//     identity must not be linked to the old one through them) and the
//     count of rejected updates.
//
// What is installed, the anti-rollback counters and the record of the last
// transaction stay: a reset keeps the installed software. erase must be
// idempotent; a reset interrupted by a power cut is run again from the
// start.
func (e *Engine) FactoryReset(ctx context.Context, erase func(context.Context) error) error {
	return e.Exclusive(ctx, func() error {
		if err := e.settleForLocal(ctx, "factory reset"); err != nil {
			return err
		}
		e.queue(nil, deviceapi.EventFactoryReset, "local", "factory reset through the local control API")
		if err := e.save(); err != nil {
			return err
		}
		fctx, cancel := context.WithTimeout(ctx, resetFlushTimeout)
		err := e.flush(fctx)
		cancel()
		if err != nil {
			return err
		}
		if err := erase(ctx); err != nil {
			return fmt.Errorf("factory reset: %w", err)
		}
		e.j.Outbox = nil
		e.j.FailedVerifications = 0
		if err := e.save(); err != nil {
			return err
		}
		// A reset keeps the software, so it neither repairs nor hides an
		// unauthorised change: the alert stays and is reported again
		// under the new identity.
		return e.reportAlertAgain()
	})
}

// settleForLocal makes room for an operation of the local control API: a
// transaction still staging its payload (nothing switched) is cancelled;
// one that switched the bootloader or is being applied is left alone and
// ErrInProgress returned.
func (e *Engine) settleForLocal(ctx context.Context, why string) error {
	tx := e.j.Tx
	if tx == nil || tx.State.Terminal() {
		return nil
	}
	if tx.State == StateDownloading || tx.State == StateVerifying {
		return e.fail(ctx, tx, deviceapi.EventFailed, "cancelled", "cancelled by "+why)
	}
	return fmt.Errorf("%w: transaction %s is %s", ErrInProgress, tx.ID, tx.State)
}

// Details is Status with the engine's security counters, for the local
// control API.
type Details struct {
	Status
	// FailedVerifications counts updates rejected as invalid.
	FailedVerifications uint32
	// Alert is the current alert's findings; the engine is restricted to
	// the update server while it is not empty (EN 303 645 5.7-2).
	Alert []Finding
}

// Details returns the current state with the security counters.
func (e *Engine) Details(ctx context.Context) (Details, error) {
	var d Details
	err := e.Exclusive(ctx, func() error {
		bs, err := e.cfg.Bootloader.State()
		if err != nil {
			return err
		}
		d.Boot, d.Outbox, d.FailedVerifications, d.Alert = bs, len(e.j.Outbox), e.j.FailedVerifications, e.Alert()
		d.Installed = map[string]Installed{}
		for name, in := range e.cfg.Factory {
			d.Installed[name] = in
		}
		for name, in := range e.j.Installed {
			d.Installed[name] = in
		}
		if e.j.Tx != nil {
			tx := *e.j.Tx
			d.Tx = &tx
		}
		return nil
	})
	return d, err
}
