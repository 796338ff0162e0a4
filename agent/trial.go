package agent

import (
	"context"
	"fmt"

	"github.com/koshin-ota/koshin/deviceapi"
)

// trial judges the new image: health check, then commit or roll back. For
// A/B it runs on the new slot during the trial boot; for in-place payloads
// right after Install.
func (e *Engine) trial(ctx context.Context, tx *Transaction, bs BootState) error {
	if tx.Healthy {
		// Cut between "healthy" and the end of the commit: finish it.
		return e.commit(ctx, tx, bs)
	}
	if tx.Slot != "" && tx.State != StateTrialBoot && tx.State != StateHealthCheck {
		if err := e.move(tx, StateTrialBoot); err != nil {
			return err
		}
	}
	if tx.State != StateHealthCheck {
		if err := e.move(tx, StateHealthCheck); err != nil {
			return err
		}
	}
	err := e.cfg.Health.Check(ctx)
	if ctx.Err() != nil {
		return ctx.Err() // the agent is stopping; that says nothing about the image
	}
	if err != nil {
		return e.rollBack(ctx, tx, bs, "health-check", err.Error())
	}
	tx.Healthy = true
	if err := e.move(tx, StateHealthCheck); err != nil {
		return err
	}
	return e.commit(ctx, tx, bs)
}

// commit makes the new image permanent, then advances the anti-rollback
// counter, then records committed and queues the report. The order is what
// makes a power cut harmless: the counter moves only once the bootloader
// can no longer fall back to the old slot, so the counter never runs ahead
// of the booted image (UPE03); and every step is idempotent, so a cut
// anywhere repeats the rest at the next start.
func (e *Engine) commit(ctx context.Context, tx *Transaction, bs BootState) error {
	if tx.Slot != "" {
		if bs.Trial || bs.Primary != tx.Slot {
			if err := e.cfg.Bootloader.Commit(); err != nil {
				return fmt.Errorf("bootloader commit: %w", err)
			}
		}
	} else if err := e.inPlace(tx, func(h Installer) error { return h.Commit(ctx, tx) }); err != nil {
		return fmt.Errorf("commit %s: %w", tx.Target.Name, err)
	}
	c := tx.Target.Custom
	if err := e.cfg.Counter.Advance(c.Component, c.ReleaseCounter); err != nil {
		return fmt.Errorf("advance anti-rollback counter: %w", err)
	}
	if err := e.recordCommit(tx); err != nil {
		return err
	}
	if e.j.Installed == nil {
		e.j.Installed = map[string]Installed{}
	}
	e.j.Installed[c.Component] = Installed{Target: tx.Target.Name, Version: c.Version, ReleaseCounter: c.ReleaseCounter, SHA256: tx.Target.SHA256()}
	e.queue(tx, deviceapi.EventCommitted, "", "")
	e.queueUnqueued() // an alert-cleared report goes with the commit's
	if err := e.move(tx, StateCommitted); err != nil {
		return err
	}
	if err := e.dropUnqueued(); err != nil {
		return err
	}
	e.cfg.Log.Info("update committed", "target", tx.Target.Name, "counter", c.ReleaseCounter)
	return e.flush(ctx)
}

// rollBack returns to the last committed state: Revert for A/B (then a
// reboot if the new slot is running), Rollback for in-place payloads. The
// rolled-back target is blocked from automatic reinstallation.
func (e *Engine) rollBack(ctx context.Context, tx *Transaction, bs BootState, reason, detail string) error {
	if tx.Slot != "" {
		if bs.Trial || bs.Primary != tx.FromSlot {
			if err := e.cfg.Bootloader.Revert(tx.FromSlot); err != nil {
				return fmt.Errorf("bootloader revert: %w", err)
			}
		}
	} else if err := e.inPlace(tx, func(h Installer) error { return h.Rollback(ctx, tx) }); err != nil {
		return fmt.Errorf("roll back %s: %w", tx.Target.Name, err)
	}
	e.j.Blocked = tx.Target.SHA256()
	tx.Reason, tx.Detail = truncate(reason, maxReason), truncate(detail, maxDetail)
	e.queue(tx, deviceapi.EventRolledBack, reason, detail)
	if err := e.move(tx, StateRolledBack); err != nil {
		return err
	}
	e.cfg.Log.Warn("update rolled back", "target", tx.Target.Name, "reason", reason, "detail", detail)
	if tx.Slot != "" && bs.Booted != tx.FromSlot {
		return e.requestReboot(ctx)
	}
	return e.flush(ctx)
}

// fail ends a transaction that never switched anything: the staged payload
// is discarded and the failure reported. Verification failures are
// reported as rejected-invalid-update to the server only, never explained
// to whoever offered the update (EN 303 645 5.3-9).
func (e *Engine) fail(ctx context.Context, tx *Transaction, typ deviceapi.EventType, reason, detail string) error {
	if err := e.inPlace(tx, func(h Installer) error { return h.Rollback(ctx, tx) }); err != nil {
		e.cfg.Log.Warn("discard staged payload", "err", err)
	}
	if typ == deviceapi.EventRejected {
		e.j.FailedVerifications++
	}
	tx.Reason, tx.Detail = truncate(reason, maxReason), truncate(detail, maxDetail)
	tx.Offset, tx.Checkpoint = 0, nil
	e.queue(tx, typ, reason, detail)
	if err := e.move(tx, StateFailed); err != nil {
		return err
	}
	e.cfg.Log.Warn("update failed", "target", tx.Target.Name, "reason", reason, "detail", detail)
	return e.flush(ctx)
}

// inPlace calls fn with tx's installer; a transaction whose installer is no
// longer configured has nothing to undo.
func (e *Engine) inPlace(tx *Transaction, fn func(Installer) error) error {
	h, err := e.installer(&tx.Target)
	if err != nil {
		return nil
	}
	return fn(h)
}
