package rollout_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

// TestMaintenanceWindow: outside the window the engine assigns nothing
// and no device is offered the update, even one assigned while the window
// was open; once the window opens both happen (CCDS UPE08).
func TestMaintenanceWindow(t *testing.T) {
	f := newFixture(t, 100)
	s := spec()
	s.SilenceTimeout = 48 * time.Hour
	s.Window = &koshin.MaintenanceWindow{Cron: "0 2 * * *", Duration: 2 * time.Hour, TimeZone: "Asia/Tokyo"}
	id := f.start(s) // 09:00 in Tokyo: closed
	f.tick()
	if n := len(f.assignments(id, -1, "")); n != 0 {
		t.Fatalf("%d assignments outside the window", n)
	}
	f.clock.Set(time.Date(2026, 3, 2, 17, 0, 0, 0, time.UTC)) // 02:00 Tokyo
	f.tick()
	as := f.assignments(id, 0, "")
	if len(as) != 10 {
		t.Fatalf("%d assignments inside the window, want 10", len(as))
	}
	if n := f.install(as[:4], success); n != 4 {
		t.Fatalf("%d offered inside the window, want 4", n)
	}
	f.clock.Set(time.Date(2026, 3, 2, 19, 0, 0, 0, time.UTC)) // 04:00 Tokyo: closed again
	for _, a := range as[4:] {
		if o := f.checkIn(a.DeviceID); o != nil {
			t.Fatalf("device offered outside the window: %+v", o)
		}
	}
	f.clock.Set(time.Date(2026, 3, 3, 17, 30, 0, 0, time.UTC)) // next night
	if n := f.install(as[4:], success); n != 6 {
		t.Fatalf("%d offered when the window reopened, want 6", n)
	}
}

// TestRateLimitCapsStarts: with a limit of 10 devices per minute the
// engine assigns at most 10 in any minute however often it ticks, and the
// devices are offered in batches of 10 (EN 303 645 5.9-3).
func TestRateLimitCapsStarts(t *testing.T) {
	f := newFixture(t, 100)
	s := spec()
	s.Phases = []koshin.Phase{{Percent: 100}}
	s.Threshold = koshin.Threshold{MaxFailurePercent: 50}
	s.RatePerMinute = 10
	id := f.start(s)
	for minute := 1; minute <= 3; minute++ {
		for range 3 {
			f.tick()
			f.clock.Advance(10 * time.Second)
		}
		if n := len(f.assignments(id, 0, "")); n != 10*minute {
			t.Fatalf("minute %d: %d assigned, want %d", minute, n, 10*minute)
		}
		offered := 0
		for _, d := range f.devices {
			if f.checkIn(d.ID) != nil {
				offered++
			}
		}
		if offered != 10*minute {
			t.Fatalf("minute %d: %d offered, want %d", minute, offered, 10*minute)
		}
		f.clock.Advance(30 * time.Second)
	}
}

// TestRateLimitCapsApprovedBurst: approving many waiting devices at once
// still releases them to check-ins at the rate limit.
func TestRateLimitCapsApprovedBurst(t *testing.T) {
	f := newFixture(t, 100)
	s := spec()
	s.Phases = []koshin.Phase{{Percent: 100}}
	s.Mode = koshin.ModeApproval
	s.RatePerMinute = 10
	id := f.start(s)
	for range 3 {
		f.tick()
		f.clock.Advance(time.Minute)
	}
	if n, err := f.svc.Approve(f.ctx, operator, id, approveAll()); err != nil || n != 30 {
		t.Fatalf("Approve = %d, %v; want 30", n, err)
	}
	offered := func() int {
		n := 0
		for _, a := range f.assignments(id, 0, koshin.AssignmentPending) {
			if f.checkIn(a.DeviceID) != nil {
				n++
			}
		}
		return n
	}
	if n := offered(); n != 10 {
		t.Fatalf("%d offered right after approving 30, want 10", n)
	}
	f.clock.Advance(30 * time.Second)
	if n := offered(); n != 5 {
		t.Fatalf("%d offered half a minute later, want 5", n)
	}
}

// TestUpdateRate: an operator may raise the rate of a running rollout;
// the next batch follows the new limit.
func TestUpdateRate(t *testing.T) {
	f := newFixture(t, 100)
	s := spec()
	s.Phases = []koshin.Phase{{Percent: 100}}
	s.RatePerMinute = 10
	id := f.start(s)
	f.tick()
	rate := 25
	r, err := f.svc.Update(f.ctx, operator, id, koshin.RolloutUpdate{RatePerMinute: &rate})
	if err != nil || r.RatePerMinute != 25 {
		t.Fatalf("Update = %+v, %v", r, err)
	}
	f.clock.Advance(time.Minute)
	f.tick()
	if n := len(f.assignments(id, 0, "")); n != 35 {
		t.Fatalf("%d assigned, want 10 + 25", n)
	}
	bad := -1
	_, err = f.svc.Update(f.ctx, operator, id, koshin.RolloutUpdate{RatePerMinute: &bad})
	wantCode(t, err, koshin.EINVALID)
	if got := f.auditCount("rollout.update"); got != 2 {
		t.Fatalf("%d update audit entries, want 2", got)
	}
}

// TestRunTicksUntilCancelled: Run ticks repeatedly and returns the
// context's error when it ends.
func TestRunTicksUntilCancelled(t *testing.T) {
	f := newFixture(t, 20)
	id := f.start(spec())
	ticks := make(chan struct{}, 1)
	eng := f.engine()
	eng.Now = func() time.Time {
		select {
		case ticks <- struct{}{}:
		default:
		}
		return f.clock.Now()
	}
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan error)
	go func() { done <- eng.Run(ctx, time.Millisecond) }()
	<-ticks
	<-ticks // the second tick began, so the first is over
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if n := len(f.assignments(id, 0, "")); n != 2 {
		t.Fatalf("%d assigned by Run, want 2", n)
	}
}
