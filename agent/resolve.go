package agent

import (
	"context"
	"fmt"

	"github.com/koshin-ota/koshin/deviceapi"
)

// resolve reconciles the journal with the bootloader after a start-up (or
// after a failed journal write). Each case below names the power-cut window
// that produces it; anything the table does not expect falls back to the
// last committed slot, never forward to an unverified one.
func (e *Engine) resolve(ctx context.Context) error {
	bs, err := e.cfg.Bootloader.State()
	if err != nil {
		return fmt.Errorf("bootloader state: %w", err)
	}
	tx := e.j.Tx
	if tx == nil || tx.State.Terminal() {
		return e.resolveIdle(ctx, tx, bs)
	}
	if tx.Slot == "" {
		return e.resolveInPlace(ctx, tx, bs)
	}
	if bs.Booted != tx.Slot && bs.Booted != tx.FromSlot {
		return fmt.Errorf("agent: booted slot %q is neither %q nor %q of transaction %s", bs.Booted, tx.FromSlot, tx.Slot, tx.ID)
	}
	switch tx.State {
	case StateDownloading, StateVerifying:
		return e.resolveStaging(ctx, tx, bs)
	case StateInstalling:
		if bs.Booted == tx.Slot {
			// Cut after SetTrial, before awaiting-reboot was written;
			// the device has since rebooted into the trial.
			return e.trial(ctx, tx, bs)
		}
		// Cut before or during SetTrial: verify again, then switch.
		return e.install(ctx, tx, bs, false)
	default: // awaiting-reboot, trial-boot, health-check
		return e.resolveSwitched(ctx, tx, bs)
	}
}

// resolveIdle handles "no transaction in flight". A trial the journal does
// not own (lost or corrupt journal, foreign tool) is disarmed: only the
// committed slot is known to be good.
func (e *Engine) resolveIdle(ctx context.Context, tx *Transaction, bs BootState) error {
	if bs.Trial {
		good := bs.Booted
		if bs.Booted == bs.Primary {
			o, err := Other(e.cfg.Slots, bs.Booted)
			if err != nil {
				return err
			}
			good = o
		}
		if err := e.cfg.Bootloader.Revert(good); err != nil {
			return fmt.Errorf("disarm unowned trial: %w", err)
		}
		e.queue(nil, deviceapi.EventFailed, "unowned-trial", "a trial boot not started by this agent was disarmed")
		if err := e.save(); err != nil {
			return err
		}
		if bs.Booted != good {
			return e.requestReboot(ctx)
		}
		return nil
	}
	if tx != nil && tx.State == StateRolledBack && tx.Slot != "" && bs.Booted == tx.Slot {
		// Cut after the rollback was recorded, before the reboot into the
		// old slot.
		return e.requestReboot(ctx)
	}
	return nil
}

// resolveStaging: the payload was being downloaded or verified into the
// inactive slot; nothing is switched yet, so the next poll resumes it.
func (e *Engine) resolveStaging(ctx context.Context, tx *Transaction, bs BootState) error {
	if bs.Booted == tx.Slot {
		// Only a foreign bootloader change gets here; never write the
		// running slot.
		return e.fail(ctx, tx, deviceapi.EventFailed, "slot-in-use", "the slot being written is now booted")
	}
	if bs.Trial {
		if err := e.cfg.Bootloader.Revert(tx.FromSlot); err != nil {
			return fmt.Errorf("disarm unowned trial: %w", err)
		}
	}
	return nil
}

// resolveSwitched: SetTrial completed. Booted into the new slot → finish the
// trial; switch armed but not yet rebooted → reboot; otherwise the
// bootloader fell back (bootcount reached bootlimit: the new image never got
// to commit) or the revert already happened → roll back.
func (e *Engine) resolveSwitched(ctx context.Context, tx *Transaction, bs BootState) error {
	switch {
	case bs.Booted == tx.Slot:
		return e.trial(ctx, tx, bs)
	case tx.State == StateAwaitingReboot && bs.Trial && bs.Primary == tx.Slot:
		return e.requestReboot(ctx)
	case tx.State == StateAwaitingReboot:
		return e.rollBack(ctx, tx, bs, "boot-failed", "the bootloader fell back: the new image did not come up")
	default:
		return e.rollBack(ctx, tx, bs, "boot-failed", "the bootloader fell back during the trial")
	}
}

// resolveInPlace handles installers that apply without a reboot.
func (e *Engine) resolveInPlace(ctx context.Context, tx *Transaction, bs BootState) error {
	switch tx.State {
	case StateDownloading, StateVerifying:
		return nil
	case StateInstalling:
		return e.install(ctx, tx, bs, false)
	case StateHealthCheck:
		return e.trial(ctx, tx, bs)
	default:
		return e.rollBack(ctx, tx, bs, "inconsistent", fmt.Sprintf("state %s without a slot", tx.State))
	}
}

// requestReboot asks the system to reboot and stops further work in this
// boot. Reports go out first where possible, so the server hears of the
// reboot from the old image.
func (e *Engine) requestReboot(ctx context.Context) error {
	if err := e.flush(ctx); err != nil {
		return err
	}
	if err := e.cfg.Reboot(ctx); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	e.pendingReboot = true
	return ErrReboot
}
