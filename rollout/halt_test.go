package rollout_test

import (
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/rollout"
)

// TestHaltAtThreshold: once failures reach the threshold the rollout halts
// with a reason, devices that had not started are cancelled and are never
// offered the update while it stays halted, devices already installing
// keep their offer, and administrators are notified of each failure and
// of the halt. Resuming needs a threshold the phase no longer reaches.
func TestHaltAtThreshold(t *testing.T) {
	f := newFixture(t, 100)
	s := spec()
	s.Phases[0] = koshin.Phase{Percent: 20, Soak: time.Hour}
	id := f.start(s)
	f.tick()
	as := f.assignments(id, 0, "")
	if len(as) != 20 {
		t.Fatalf("%d assignments, want 20", len(as))
	}
	f.install(as[0:1], failure)
	f.install(as[1:2], rollback)
	f.install(as[2:3], []koshin.EventType{koshin.EventDownloading, koshin.EventRejected})
	f.install(as[3:5], success[:2]) // installing: started, not cancellable
	f.checkIn(as[5].DeviceID)       // offered, not started
	f.tick()

	r := f.rollout(id)
	if r.State != koshin.RolloutHalted || r.HaltReason != "phase 1: 3 devices failed (threshold 3)" {
		t.Fatalf("rollout %s (%q), want halted at phase 1", r.State, r.HaltReason)
	}
	cancelled := f.assignments(id, 0, koshin.AssignmentCancelled)
	if len(cancelled) != 15 { // as[5:20]: offered or pending
		t.Fatalf("%d cancelled, want 15", len(cancelled))
	}
	for range 3 { // later ticks and check-ins must not revive them
		f.clock.Advance(time.Hour)
		f.tick()
		for _, a := range cancelled {
			if o := f.checkIn(a.DeviceID); o != nil {
				t.Fatalf("cancelled device %s offered %+v", a.DeviceID[:8], o)
			}
		}
		assertNothingOffered(t, f, as[3:5])
	}
	for _, a := range as[3:5] {
		if o := f.checkIn(a.DeviceID); o == nil || o.State != koshin.AssignmentInstalling {
			t.Fatalf("installing device lost its offer after the halt: %+v", o)
		}
	}
	wantKinds(t, f.notes, map[rollout.Kind]int{
		rollout.KindFailed: 1, rollout.KindRolledBack: 1, rollout.KindRejected: 1, rollout.KindHalted: 1,
	})
	if got := f.auditCount("rollout.halt"); got != 1 {
		t.Fatalf("%d halt audit entries, want 1", got)
	}

	_, err := f.svc.Resume(f.ctx, operator, id, nil)
	wantCode(t, err, koshin.ECONFLICT)
	if !strings.Contains(koshin.ErrorMessage(err), "raise the threshold") {
		t.Fatalf("resume refusal does not say what to do: %v", err)
	}
	f.resumeWithThreshold(id, 10)
	f.install(as[3:5], success[2:])
	for range 5 {
		f.tick()
		f.install(f.assignments(id, 0, koshin.AssignmentPending), success)
	}
	st := f.stats(id, 0)
	if st.Succeeded != 17 || st.Failed != 3 || !st.Done() {
		t.Fatalf("after resume: %+v, want 17 succeeded, 3 failed, done", st)
	}
}

func (f *fixture) resumeWithThreshold(id int64, max int) {
	f.t.Helper()
	r, err := f.svc.Resume(f.ctx, operator, id, &koshin.RolloutUpdate{Threshold: &koshin.Threshold{MaxFailures: max}})
	if err != nil || r.State != koshin.RolloutRunning || r.HaltReason != "" {
		f.t.Fatalf("Resume = %+v, %v", r, err)
	}
}

func wantKinds(t *testing.T, r *recorder, want map[rollout.Kind]int) {
	t.Helper()
	got := r.kinds()
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%d %s notifications, want %d (all: %v)", got[k], k, n, got)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s notifications: %v", k, got)
		}
	}
}

// TestSilentDevicesCountAsFailed: devices that stop talking past the
// silence timeout, whatever state they stopped in, count as failed and
// halt the rollout like reported failures.
func TestSilentDevicesCountAsFailed(t *testing.T) {
	tests := []struct {
		name    string
		silence func(f *fixture, deviceID string) // what the device did before going quiet
	}{
		{"never checked in", func(*fixture, string) {}},
		{"offered, never reported", func(f *fixture, id string) { f.checkIn(id) }},
		{"downloading", func(f *fixture, id string) { f.checkIn(id); f.report(id, koshin.EventDownloading) }},
		{"rebooting", func(f *fixture, id string) { f.checkIn(id); f.report(id, success[:3]...) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 100)
			id := f.start(spec())
			f.tick()
			as := f.assignments(id, 0, "")
			f.install(as[3:], success)
			for _, a := range as[:3] {
				tt.silence(f, a.DeviceID)
			}
			f.clock.Advance(6*time.Hour - time.Second)
			f.tick()
			if r := f.rollout(id); r.State != koshin.RolloutRunning {
				t.Fatalf("rollout %s before the deadline", r.State)
			}
			f.clock.Advance(time.Second)
			f.tick()
			if n := len(f.assignments(id, 0, koshin.AssignmentSilentFailed)); n != 3 {
				t.Fatalf("%d silent-failed, want 3", n)
			}
			if r := f.rollout(id); r.State != koshin.RolloutHalted {
				t.Fatalf("rollout %s, want halted by 3 silent devices", r.State)
			}
			wantKinds(t, f.notes, map[rollout.Kind]int{rollout.KindSilent: 1, rollout.KindHalted: 1})
		})
	}
}

// TestAbortCancelsNotStarted: abort is final, cancels devices that have
// not started and leaves installing devices to finish.
func TestAbortCancelsNotStarted(t *testing.T) {
	f := newFixture(t, 100)
	id := f.start(spec())
	f.tick()
	as := f.assignments(id, 0, "")
	f.install(as[:1], success[:2])
	r, err := f.svc.Abort(f.ctx, operator, id, "")
	if err != nil || r.State != koshin.RolloutAborted || r.HaltReason != "aborted by "+operator {
		t.Fatalf("Abort = %+v, %v", r, err)
	}
	if n := len(f.assignments(id, 0, koshin.AssignmentCancelled)); n != len(as)-1 {
		t.Fatalf("%d cancelled, want %d", n, len(as)-1)
	}
	assertNothingOffered(t, f, as[:1])
	if o := f.checkIn(as[0].DeviceID); o == nil {
		t.Fatal("installing device lost its update on abort")
	}
	_, err = f.svc.Resume(f.ctx, operator, id, nil)
	wantCode(t, err, koshin.ECONFLICT)
	_, err = f.svc.Abort(f.ctx, operator, id, "again")
	wantCode(t, err, koshin.ECONFLICT)
}
