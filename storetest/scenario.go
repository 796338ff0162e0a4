package storetest

import (
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

// engineStep is what the rollout engine does on each tick: evaluate the
// current phase with the domain rules, then apply the decision through the
// store. The scenario drives it by hand to show the two fit together.
func (e *env) engineStep(t *testing.T, id int64) (koshin.Decision, []*koshin.Assignment) {
	t.Helper()
	r, err := e.s.FindRolloutByID(e.ctx, id)
	must(t, err)
	s := e.stats(t, id, r.Phase)
	d := r.Decide(*s, e.clock.Now())
	switch d.Action {
	case koshin.ActionHalt:
		_, _, err = e.s.HaltRollout(e.ctx, id, d.Reason, e.clock.Now())
	case koshin.ActionAdvance, koshin.ActionComplete:
		_, err = e.s.AdvanceRollout(e.ctx, id, r.Phase, e.clock.Now())
	case koshin.ActionWait:
		if n := r.StartBudget(*s, e.clock.Now()); n > 0 {
			as, err := e.s.AssignNext(e.ctx, id, r.Phase, min(n, koshin.MaxLimit), e.clock.Now())
			must(t, err)
			return d, as
		}
	}
	must(t, err)
	return d, nil
}

// testScenario: a three-phase rollout over 20 devices. The canary commits
// and soaks, the phase advances, the rate limit batches starts, and one
// failure plus one silent device reach the threshold and halt the rollout
// before the last phase assigns anyone.
func testScenario(t *testing.T, e *env) {
	e.createRelease(t, "a.img", "board-a")
	e.fleet(t, "D", "board-a", 20)
	r := NewRollout("a.img", koshin.Phase{Count: 2, Soak: time.Hour}, koshin.Phase{Percent: 50, Soak: time.Hour}, koshin.Phase{Percent: 100})
	r.Threshold, r.RatePerMinute = koshin.Threshold{MaxFailures: 2}, 5
	r = e.startRollout(t, r)

	_, canary := e.engineStep(t, r.ID)
	if len(canary) != 2 {
		t.Fatalf("canary = %d devices", len(canary))
	}
	for _, a := range canary {
		e.report(t, a.DeviceID, "a.img", success...)
	}
	if d, _ := e.engineStep(t, r.ID); d.Action != koshin.ActionWait || d.At.IsZero() {
		t.Fatalf("finished canary did not soak: %+v", d)
	}
	e.clock.Advance(time.Hour)
	if d, _ := e.engineStep(t, r.ID); d.Action != koshin.ActionAdvance {
		t.Fatalf("soaked canary: %+v", d)
	}

	_, batch1 := e.engineStep(t, r.ID)
	_, none := e.engineStep(t, r.ID)
	e.clock.Advance(koshin.RateWindow)
	_, batch2 := e.engineStep(t, r.ID)
	if len(batch1) != 5 || len(none) != 0 || len(batch2) != 3 {
		t.Fatalf("rate-limited batches %d, %d, %d; want 5, 0, 3", len(batch1), len(none), len(batch2))
	}
	phase1 := append(batch1, batch2...)
	for _, a := range phase1[:6] {
		e.report(t, a.DeviceID, "a.img", success...)
	}
	e.report(t, phase1[6].DeviceID, "a.img", koshin.EventDownloading, koshin.EventInstalling, koshin.EventRolledBack)
	// phase1[7] never reports.
	if d, _ := e.engineStep(t, r.ID); d.Action != koshin.ActionWait {
		t.Fatalf("one failure below threshold: %+v", d)
	}
	e.clock.Advance(time.Hour)
	if d, _ := e.engineStep(t, r.ID); d.Action != koshin.ActionHalt {
		t.Fatalf("silent device did not count: %+v", d)
	}
	got, err := e.s.FindRolloutByID(e.ctx, r.ID)
	must(t, err)
	if got.State != koshin.RolloutHalted || got.Phase != 1 {
		t.Fatalf("rollout = %s in phase %d", got.State, got.Phase)
	}
	all, err := e.s.FindAssignments(e.ctx, koshin.AssignmentFilter{RolloutID: r.ID})
	must(t, err)
	if len(all) != 10 {
		t.Fatalf("%d assignments; the last phase must assign no one", len(all))
	}
	if d, as := e.engineStep(t, r.ID); d.Action != koshin.ActionWait || len(as) != 0 {
		t.Fatal("a halted rollout kept assigning")
	}
}
