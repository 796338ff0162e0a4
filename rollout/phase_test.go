package rollout_test

import (
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

// TestPhasesAdvanceAfterSoak runs three phases over 100 devices: each
// phase's devices are assigned, commit, the phase soaks for an hour and
// only then does the next begin; after the last the rollout completes.
// Devices outside the current phase are never offered anything.
func TestPhasesAdvanceAfterSoak(t *testing.T) {
	f := newFixture(t, 100)
	id := f.start(spec())
	wantSizes := []int{10, 40, 50}
	for phase, size := range wantSizes {
		f.tick()
		if r := f.rollout(id); r.Phase != phase || r.State != koshin.RolloutRunning {
			t.Fatalf("phase %d: rollout is %s in phase %d", phase, r.State, r.Phase)
		}
		as := f.assignments(id, phase, "")
		if len(as) != size {
			t.Fatalf("phase %d: %d assignments, want %d", phase, len(as), size)
		}
		if phase == 0 {
			assertNothingOffered(t, f, as)
		}
		if n := f.install(as, success); n != size {
			t.Fatalf("phase %d: %d devices offered, want %d", phase, n, size)
		}
		f.clock.Advance(time.Hour - time.Second)
		f.tick()
		if r := f.rollout(id); r.Phase != phase || r.State != koshin.RolloutRunning {
			t.Fatalf("phase %d moved on before its soak ended: %s in phase %d", phase, r.State, r.Phase)
		}
		f.clock.Advance(time.Second)
	}
	f.tick()
	r := f.rollout(id)
	if r.State != koshin.RolloutCompleted {
		t.Fatalf("rollout is %s, want completed", r.State)
	}
	if got := len(f.assignments(id, -1, koshin.AssignmentCommitted)); got != 100 {
		t.Fatalf("%d committed, want 100", got)
	}
	for action, want := range map[string]int{
		"rollout.create": 1, "rollout.start": 1, "rollout.advance": 2, "rollout.complete": 1,
		"assignment.offer": 100, "assignment.downloading": 100, "assignment.committed": 100,
	} {
		if got := f.auditCount(action); got != want {
			t.Errorf("audit %s: %d entries, want %d", action, got, want)
		}
	}
	if _, err := f.db.VerifyAudit(f.ctx); err != nil {
		t.Fatal(err)
	}
}

// assertNothingOffered checks that every device outside as gets no offer.
func assertNothingOffered(t *testing.T, f *fixture, as []*koshin.Assignment) {
	t.Helper()
	member := map[string]bool{}
	for _, a := range as {
		member[a.DeviceID] = true
	}
	for _, d := range f.devices {
		if !member[d.ID] && f.checkIn(d.ID) != nil {
			t.Fatalf("device %s outside the phase was offered the release", d.Serial)
		}
	}
}

// TestSuccessOnlyAtCommitted: a phase whose devices have installed and
// rebooted but not reported committed is not finished.
func TestSuccessOnlyAtCommitted(t *testing.T) {
	f := newFixture(t, 20)
	id := f.start(spec())
	f.tick()
	as := f.assignments(id, 0, "")
	f.install(as, success[:3]) // downloading, installing, rebooting
	f.clock.Advance(2 * time.Hour)
	f.tick()
	if s := f.stats(id, 0); s.Succeeded != 0 || s.InProgress != len(as) {
		t.Fatalf("stats %+v: want %d in progress, none succeeded", s, len(as))
	}
	if r := f.rollout(id); r.Phase != 0 {
		t.Fatalf("advanced to phase %d without a committed device", r.Phase)
	}
}

// TestManualAdvance: a manual phase waits for the operator; the operator
// cannot advance an unfinished phase or from the wrong phase, and may skip
// the soak once the phase is done.
func TestManualAdvance(t *testing.T) {
	f := newFixture(t, 40)
	s := spec()
	s.Phases[0].Manual = true
	id := f.start(s)
	f.tick()
	as := f.assignments(id, 0, "")
	_, err := f.svc.Advance(f.ctx, operator, id, 0)
	wantCode(t, err, koshin.ECONFLICT) // devices not done
	f.install(as, success)
	_, err = f.svc.Advance(f.ctx, operator, id, 1)
	wantCode(t, err, koshin.ECONFLICT) // wrong phase
	f.clock.Advance(2 * time.Hour)
	f.tick()
	if r := f.rollout(id); r.Phase != 0 {
		t.Fatalf("manual phase advanced on its own to %d", r.Phase)
	}
	r, err := f.svc.Advance(f.ctx, operator, id, 0)
	if err != nil || r.Phase != 1 {
		t.Fatalf("Advance = phase %v, %v; want phase 1", r, err)
	}
	_, err = f.svc.Advance(f.ctx, operator, id, 0)
	wantCode(t, err, koshin.ECONFLICT) // a repeated click changes nothing
	if got := f.auditCount("rollout.advance"); got != 4 {
		t.Fatalf("%d rollout.advance audit entries, want 4 (3 refused, 1 done)", got)
	}
}
