package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/koshin-ota/koshin/deviceapi"
)

// run drives a transaction from downloading or verifying to the point
// where it needs a reboot or has finished.
func (e *Engine) run(ctx context.Context, tx *Transaction, bs BootState) error {
	h, err := e.installer(&tx.Target)
	if err != nil {
		return e.fail(ctx, tx, deviceapi.EventFailed, "no-installer", err.Error())
	}
	for {
		switch tx.State {
		case StateDownloading:
			if err := e.download(ctx, tx, h); err != nil {
				return e.downloadFailed(ctx, tx, err)
			}
		case StateVerifying:
			if err := e.verify(ctx, tx, h); err != nil {
				return err
			}
		case StateInstalling:
			return e.install(ctx, tx, bs, true)
		default:
			return nil
		}
	}
}

// verify reads back what was stored. A mismatch means the destination lost
// or changed bytes (a cut the checkpoint did not cover, failing storage):
// download again from the start, a bounded number of times.
func (e *Engine) verify(ctx context.Context, tx *Transaction, h Installer) error {
	err := h.Verify(ctx, tx)
	switch {
	case err == nil:
		e.queue(tx, deviceapi.EventInstalling, "", "")
		return e.move(tx, StateInstalling)
	case !errors.Is(err, ErrSlotMismatch):
		return fmt.Errorf("verify %s: %w", tx.Target.Name, err)
	case tx.Attempts+1 >= e.cfg.ReadBackAttempts:
		return e.fail(ctx, tx, deviceapi.EventFailed, "read-back", err.Error())
	}
	e.cfg.Log.Warn("read-back mismatch; downloading again", "target", tx.Target.Name, "err", err)
	tx.Attempts++
	tx.Offset, tx.Checkpoint, tx.Written = 0, nil, nil
	return e.move(tx, StateDownloading)
}

// install switches to the verified payload. For A/B that is SetTrial and a
// reboot. When resuming (fresh is false) the slot is read back once more
// first, so that the bootloader is only ever pointed at bytes verified in
// this very run.
func (e *Engine) install(ctx context.Context, tx *Transaction, bs BootState, fresh bool) error {
	h, err := e.installer(&tx.Target)
	if err != nil {
		return e.fail(ctx, tx, deviceapi.EventFailed, "no-installer", err.Error())
	}
	if !h.Reboots() {
		return e.installInPlace(ctx, tx, h, bs)
	}
	if !fresh {
		if err := h.Verify(ctx, tx); errors.Is(err, ErrSlotMismatch) {
			return e.fail(ctx, tx, deviceapi.EventFailed, "read-back", err.Error())
		} else if err != nil {
			return fmt.Errorf("verify %s: %w", tx.Target.Name, err)
		}
	}
	if err := e.cfg.Bootloader.SetTrial(tx.Slot); err != nil {
		return fmt.Errorf("arm trial boot of slot %s: %w", tx.Slot, err)
	}
	e.queue(tx, deviceapi.EventRebooting, "", "")
	if err := e.move(tx, StateAwaitingReboot); err != nil {
		return err
	}
	e.cfg.Log.Info("trial boot armed; rebooting", "slot", tx.Slot, "target", tx.Target.Name)
	return e.requestReboot(ctx)
}

func (e *Engine) installInPlace(ctx context.Context, tx *Transaction, h Installer, bs BootState) error {
	if err := h.Install(ctx, tx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return e.rollBack(ctx, tx, bs, "install", err.Error())
	}
	return e.trial(ctx, tx, bs)
}
