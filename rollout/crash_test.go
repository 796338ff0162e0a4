package rollout_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/rollout"
)

var errCrash = errors.New("engine died")

// dying is a store through which the engine dies before its call number
// at: that call and every later one fail without reaching the database,
// as if the process had stopped there.
type dying struct {
	rollout.Store
	at, calls int
}

func (d *dying) call() error {
	d.calls++
	if d.calls > d.at {
		return errCrash
	}
	return nil
}

func (d *dying) ExpireSilentAssignments(ctx context.Context, now time.Time) (int, error) {
	if err := d.call(); err != nil {
		return 0, err
	}
	return d.Store.ExpireSilentAssignments(ctx, now)
}

func (d *dying) FindRollouts(ctx context.Context, f koshin.RolloutFilter) ([]*koshin.Rollout, error) {
	if err := d.call(); err != nil {
		return nil, err
	}
	return d.Store.FindRollouts(ctx, f)
}

func (d *dying) FindPhaseStats(ctx context.Context, id int64, phase int, now time.Time) (*koshin.PhaseStats, error) {
	if err := d.call(); err != nil {
		return nil, err
	}
	return d.Store.FindPhaseStats(ctx, id, phase, now)
}

func (d *dying) HaltRollout(ctx context.Context, id int64, reason string, now time.Time) (*koshin.Rollout, int, error) {
	if err := d.call(); err != nil {
		return nil, 0, err
	}
	return d.Store.HaltRollout(ctx, id, reason, now)
}

func (d *dying) AdvanceRollout(ctx context.Context, id int64, from int, now time.Time) (*koshin.Rollout, error) {
	if err := d.call(); err != nil {
		return nil, err
	}
	return d.Store.AdvanceRollout(ctx, id, from, now)
}

func (d *dying) AssignNext(ctx context.Context, id int64, phase, n int, now time.Time) ([]*koshin.Assignment, error) {
	if err := d.call(); err != nil {
		return nil, err
	}
	return d.Store.AssignNext(ctx, id, phase, n, now)
}

func (d *dying) AppendAudit(ctx context.Context, e *koshin.AuditEntry) error {
	if err := d.call(); err != nil {
		return err
	}
	return d.Store.AppendAudit(ctx, e)
}

// stateOnly is the snapshot without the audit and notification lines: a
// crash between a change and its audit entry loses the entry (see the
// package documentation), but never the change or its consistency.
func stateOnly(s string) string {
	var keep []string
	for line := range strings.Lines(s) {
		if !strings.HasPrefix(line, "audit ") && !strings.HasPrefix(line, "notified ") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "")
}

// TestCrashAtEveryStep: an engine that dies before any one of its store
// calls leaves a store from which the next engine's tick reaches exactly
// the state of a tick that never crashed.
func TestCrashAtEveryStep(t *testing.T) {
	once := busyFleet(t)
	counter := &dying{Store: once.db, at: 1 << 30}
	eng := once.engine()
	eng.Store = counter
	if err := eng.Tick(once.ctx); err != nil {
		t.Fatal(err)
	}
	want := stateOnly(once.snapshot())
	t.Logf("a clean tick makes %d store calls", counter.calls)
	for at := range counter.calls {
		f := busyFleet(t)
		eng := f.engine()
		eng.Store = &dying{Store: f.db, at: at}
		if err := eng.Tick(f.ctx); err != nil && !errors.Is(err, errCrash) {
			t.Fatalf("crash before call %d: Tick = %v", at+1, err)
		}
		f.tick() // a fresh engine after the restart
		if got := stateOnly(f.snapshot()); got != want {
			t.Fatalf("crash before call %d of %d: after recovery\n got: %s\nwant: %s", at+1, counter.calls, got, want)
		}
	}
}
