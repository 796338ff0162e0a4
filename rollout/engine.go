package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/koshin-ota/koshin"
)

// Engine moves running rollouts forward. Each Tick reads everything it
// decides from the store at one instant and applies each decision with
// one store call that is conditional on what it read, so ticks are
// idempotent, a crash between two calls is repaired by the next tick, and
// concurrent ticks (two replicas) cannot apply a change twice.
type Engine struct {
	Store Store
	// Notifier receives halts and silent devices (CCDS UPD10). Use an
	// *Outbox so that a slow receiver never delays a tick.
	Notifier Notifier
	Now      func() time.Time
	Log      *slog.Logger

	mu sync.Mutex // one tick at a time in this process
}

// Tick runs one pass: it marks devices silent past their deadline as
// failed, then for each running rollout evaluates the current phase
// (koshin.Rollout.Decide) and halts, advances, completes, and assigns the
// next devices within the window and rate limit. An error in one rollout
// does not stop the others; all errors are returned joined.
func (e *Engine) Tick(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	errs := []error{e.expire(ctx, now)}
	err := e.eachRunning(ctx, func(r *koshin.Rollout) {
		if err := e.step(ctx, r, now); err != nil {
			errs = append(errs, fmt.Errorf("rollout %d: %w", r.ID, err))
		}
	})
	return errors.Join(append(errs, err)...)
}

// Run ticks now and then every interval until ctx ends; tick errors are
// logged. It returns ctx's error.
func (e *Engine) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := e.Tick(ctx); err != nil && ctx.Err() == nil {
			e.logger().Error("rollout engine tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// expire marks assignments past their deadline silent-failed: silence
// counts as failure. Phase stats count overdue assignments as failed even
// before this sweep, so thresholds never wait for it.
func (e *Engine) expire(ctx context.Context, now time.Time) error {
	n, err := e.Store.ExpireSilentAssignments(ctx, now)
	if err != nil {
		return fmt.Errorf("expire silent assignments: %w", err)
	}
	if n == 0 {
		return nil
	}
	e.audit(ctx, "assignment.expire", "assignments", fmt.Sprintf("%d silent past their deadline marked failed", n))
	e.notify(ctx, Notification{
		ID: fmt.Sprintf("silent-%d", now.UnixNano()), Kind: KindSilent, Time: now, Count: n,
		Reason: "devices silent past their deadline count as failed",
	})
	return nil
}

// eachRunning calls fn for every running rollout, page by page.
func (e *Engine) eachRunning(ctx context.Context, fn func(*koshin.Rollout)) error {
	f := koshin.RolloutFilter{State: koshin.RolloutRunning, Page: koshin.SeqPage{Limit: koshin.MaxLimit}}
	for {
		page, err := e.Store.FindRollouts(ctx, f)
		if err != nil {
			return fmt.Errorf("find running rollouts: %w", err)
		}
		for _, r := range page {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fn(r)
		}
		if len(page) < f.Page.Limit {
			return nil
		}
		f.Page.Cursor = page[len(page)-1].ID
	}
}

// step applies Decide to one rollout, then assigns devices in whatever
// phase it is in afterwards.
func (e *Engine) step(ctx context.Context, r *koshin.Rollout, now time.Time) error {
	stats, err := e.Store.FindPhaseStats(ctx, r.ID, r.Phase, now)
	if err != nil {
		return err
	}
	switch d := r.Decide(*stats, now); d.Action {
	case koshin.ActionHalt:
		return e.halt(ctx, r, d.Reason, now)
	case koshin.ActionAdvance, koshin.ActionComplete:
		if r, err = e.advance(ctx, r, now); r == nil || err != nil {
			return err
		}
		if stats, err = e.Store.FindPhaseStats(ctx, r.ID, r.Phase, now); err != nil {
			return err
		}
	}
	return e.assign(ctx, r, stats, now)
}

// halt stops r; the store cancels its devices that have not started in
// the same transaction, so none of them is ever offered the update.
func (e *Engine) halt(ctx context.Context, r *koshin.Rollout, why string, now time.Time) error {
	reason := truncate(fmt.Sprintf("phase %d: %s", r.Phase+1, why), koshin.MaxHaltReasonLen)
	_, cancelled, err := e.Store.HaltRollout(ctx, r.ID, reason, now)
	if isConflict(err) {
		return nil // another replica or an operator stopped it first
	} else if err != nil {
		return err
	}
	e.logger().Warn("rollout halted", "rollout", r.ID, "reason", reason, "cancelled", cancelled)
	e.audit(ctx, "rollout.halt", rolloutTarget(r.ID), fmt.Sprintf("%s; %d assignments cancelled", reason, cancelled))
	e.notify(ctx, Notification{
		ID: fmt.Sprintf("rollout-%d-halt-%d", r.ID, now.UnixNano()), Kind: KindHalted, Time: now,
		RolloutID: r.ID, Phase: r.Phase + 1, ReleaseName: r.ReleaseName, Count: cancelled, Reason: reason,
	})
	return nil
}

// advance moves r past its finished, soaked phase. It returns nil when
// there is nothing left to assign: the rollout completed, or another
// replica advanced it first (the next tick sees the new phase).
func (e *Engine) advance(ctx context.Context, r *koshin.Rollout, now time.Time) (*koshin.Rollout, error) {
	next, err := e.Store.AdvanceRollout(ctx, r.ID, r.Phase, now)
	if isConflict(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if next.State == koshin.RolloutCompleted {
		e.audit(ctx, "rollout.complete", rolloutTarget(r.ID), fmt.Sprintf("phase %d done", r.Phase+1))
		return nil, nil
	}
	e.audit(ctx, "rollout.advance", rolloutTarget(r.ID), fmt.Sprintf("phase %d done and soaked; phase %d begins", r.Phase+1, next.Phase+1))
	return next, nil
}

// assign creates the next assignments of r's current phase, as many as
// koshin.Rollout.StartBudget allows: none outside the maintenance window,
// at most RatePerMinute in any minute (EN 303 645 5.9-3). AssignNext never
// assigns a device twice, however many replicas call it; but it does not
// itself know the rate, so two replicas ticking at the same instant can
// each start a batch. The budget is recomputed from the store on the next
// tick, so the overshoot is at most one batch per extra replica, and none
// once a lock makes a single replica run the engine.
func (e *Engine) assign(ctx context.Context, r *koshin.Rollout, stats *koshin.PhaseStats, now time.Time) error {
	budget := r.StartBudget(*stats, now)
	total := 0
	for budget > 0 {
		n := min(budget, koshin.MaxLimit)
		got, err := e.Store.AssignNext(ctx, r.ID, r.Phase, n, now)
		total += len(got)
		if isConflict(err) {
			break // paused, halted or advanced meanwhile
		} else if err != nil {
			return err
		}
		if len(got) < n {
			break // the rest of the phase is busy in other rollouts
		}
		budget -= n
	}
	if total > 0 {
		e.audit(ctx, "rollout.assign", rolloutTarget(r.ID), fmt.Sprintf("phase %d: %d devices assigned", r.Phase+1, total))
	}
	return nil
}

func (e *Engine) audit(ctx context.Context, action, target, detail string) {
	audit(ctx, e.Store, e.logger(), SystemPrincipal, action, target, nil, detail)
}

func (e *Engine) notify(ctx context.Context, n Notification) {
	notify(ctx, e.Notifier, e.logger(), n)
}

func (e *Engine) now() time.Time {
	if e.Now == nil {
		return time.Now()
	}
	return e.Now()
}

func (e *Engine) logger() *slog.Logger {
	if e.Log == nil {
		return slog.Default()
	}
	return e.Log
}
