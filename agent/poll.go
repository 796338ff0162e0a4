package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
)

// Poll checks in once and, if the server assigned an update, runs it as
// far as it goes in this boot: to a reboot (ErrReboot), to committed for
// in-place payloads, or to an error that leaves the transaction to resume.
// It returns how long to wait before the next poll as the server asked
// (interval plus random jitter).
func (e *Engine) Poll(ctx context.Context) (time.Duration, error) {
	var next time.Duration
	err := e.Exclusive(ctx, func() error {
		if err := e.rebootPending(); err != nil {
			return err
		}
		if err := e.inspect(); err != nil {
			return err
		}
		if err := e.flush(ctx); err != nil {
			return err
		}
		resp, nonce, err := e.checkIn(ctx)
		if err != nil {
			return err
		}
		next = e.jitter(time.Duration(resp.PollInterval)*time.Second, time.Duration(resp.PollJitter)*time.Second)
		return e.handle(ctx, resp, nonce)
	})
	return next, err
}

// handle acts on a check-in answer.
func (e *Engine) handle(ctx context.Context, resp deviceapi.CheckInResponse, nonce string) error {
	tx := e.j.Tx
	staging := tx != nil && (tx.State == StateDownloading || tx.State == StateVerifying)
	if tx != nil && !tx.State.Terminal() && !staging {
		return e.resolve(ctx) // switched but not finished (e.g. a reboot that failed)
	}
	var t *Target
	if len(resp.Director) > 0 {
		installed, err := e.installedCounters()
		if err != nil {
			return e.rejected(ctx, err)
		}
		targets, err := e.cfg.Verifier.Check(ctx, resp.Director, nonce, installed)
		if err != nil {
			return e.rejected(ctx, err)
		}
		t = e.pick(targets)
	}
	if staging {
		if t != nil && t.Name == tx.Target.Name && t.SHA256() == tx.Target.SHA256() && t.Length == tx.Target.Length {
			// Same payload: continue with the freshly verified instruction
			// (a mirror may have moved); the checkpoint is bound to the
			// signed length and hashes, which are unchanged.
			tx.Target = *t
			return e.resumeTx(ctx, tx)
		}
		if err := e.fail(ctx, tx, deviceapi.EventFailed, "cancelled", "no longer assigned"); err != nil {
			return err
		}
	}
	if t == nil || !e.approve(ctx, *t, resp.Mode) {
		return nil
	}
	return e.begin(ctx, *t)
}

// pick returns the first target that has an installer, is not installed
// already and was not rolled back.
func (e *Engine) pick(targets []Target) *Target {
	for i := range targets {
		t := &targets[i]
		if _, err := e.installer(t); err != nil {
			e.cfg.Log.Warn("no installer for assigned component", "component", t.Custom.Component)
			continue
		}
		if t.SHA256() == e.installedSHA256(t.Custom.Component) || t.SHA256() == e.j.Blocked {
			continue
		}
		return t
	}
	return nil
}

func (e *Engine) approve(ctx context.Context, t Target, mode deviceapi.Mode) bool {
	if e.Restricted() {
		// The user's decisions are refused while restricted (the local
		// control API's state-changing endpoints are off), so an update
		// that repairs the device must not wait for them: the server's
		// administrator decides. Download-only rollouts and updates
		// switched off still install nothing.
		return mode != deviceapi.ModeDownloadOnly && e.settings().UpdatesEnabled
	}
	if e.cfg.Approve != nil {
		return e.cfg.Approve(ctx, t, mode)
	}
	return mode == deviceapi.ModeAutomatic || mode == deviceapi.ModeForced || mode == ""
}

// rejected handles director metadata that failed verification: count and
// report it (to the server only, EN 303 645 5.3-9) and install nothing.
// Errors that are not verification failures (network, disk) are returned
// so the poll loop backs off.
func (e *Engine) rejected(ctx context.Context, err error) error {
	if !isRejection(err) {
		return fmt.Errorf("verify director: %w", err)
	}
	e.j.FailedVerifications++
	e.queue(nil, deviceapi.EventRejected, rejectionReason(err), err.Error())
	if serr := e.save(); serr != nil {
		return serr
	}
	e.cfg.Log.Warn("update rejected", "err", err)
	return e.flush(ctx)
}

// begin starts a transaction for t.
func (e *Engine) begin(ctx context.Context, t Target) error {
	h, err := e.installer(&t)
	if err != nil {
		return err
	}
	if err := e.checkCounter(&t); err != nil {
		return e.rejected(ctx, err)
	}
	bs, err := e.cfg.Bootloader.State()
	if err != nil {
		return fmt.Errorf("bootloader state: %w", err)
	}
	tx := &Transaction{ID: e.newID(), State: StateDownloading, Target: t, Started: e.cfg.Now().UTC()}
	if h.Reboots() {
		if bs.Trial || bs.Booted != bs.Primary {
			return fmt.Errorf("agent: bootloader not settled (booted %s, primary %s, trial %v)", bs.Booted, bs.Primary, bs.Trial)
		}
		if tx.Slot, err = Other(e.cfg.Slots, bs.Booted); err != nil {
			return err
		}
		tx.FromSlot = bs.Booted
	}
	e.j.Tx = tx
	e.queue(tx, deviceapi.EventDownloading, "", "")
	if err := e.save(); err != nil {
		return err
	}
	e.cfg.Log.Info("update started", "target", t.Name, "slot", tx.Slot)
	return e.run(ctx, tx, bs)
}

// resumeTx continues a transaction left in downloading or verifying.
func (e *Engine) resumeTx(ctx context.Context, tx *Transaction) error {
	bs, err := e.cfg.Bootloader.State()
	if err != nil {
		return fmt.Errorf("bootloader state: %w", err)
	}
	if tx.Slot != "" && bs.Booted == tx.Slot {
		return e.fail(ctx, tx, deviceapi.EventFailed, "slot-in-use", "the slot being written is now booted")
	}
	return e.run(ctx, tx, bs)
}

// installedCounters returns component → committed release counter, the
// persisted counter taking precedence over the journal's record.
func (e *Engine) installedCounters() (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, c := range e.components() {
		n, err := e.cfg.Counter.Get(c.Name)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", trust.ErrRollback, err)
		}
		out[c.Name] = max(n, c.ReleaseCounter)
	}
	return out, nil
}

// checkCounter refuses targets below the persisted anti-rollback counter.
// The verifier checks the same rule against the counters it was given;
// checking again here keeps the counter authoritative even if those were
// stale. A corrupt counter refuses everything rather than reading as 0.
func (e *Engine) checkCounter(t *Target) error {
	cur, err := e.cfg.Counter.Get(t.Custom.Component)
	if err != nil {
		return fmt.Errorf("%w: %w", trust.ErrRollback, err)
	}
	if t.Custom.ReleaseCounter < cur {
		return fmt.Errorf("%w: release counter %d is below committed %d for %s", trust.ErrRollback, t.Custom.ReleaseCounter, cur, t.Custom.Component)
	}
	return nil
}

// jitter returns base plus a uniformly random share of spread.
func (e *Engine) jitter(base, spread time.Duration) time.Duration {
	if spread <= 0 {
		return base
	}
	return base + time.Duration(e.randUint64()%uint64(spread))
}

func (e *Engine) randUint64() uint64 {
	var b [8]byte
	if _, err := e.cfg.Rand.Read(b[:]); err != nil {
		return uint64(e.cfg.Now().UnixNano())
	}
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}
