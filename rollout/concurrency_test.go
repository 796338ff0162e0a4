package rollout_test

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/rollout"
)

// busyFleet prepares two rollouts whose next tick has everything to do:
// rollout 1 (group plant-1) has finished and soaked phase 1, so it
// advances and assigns phase 2; rollout 2 (plant-2) has three devices
// silent past their deadline, which expire and halt it.
func busyFleet(t *testing.T) *fixture {
	f := newFixture(t, 100)
	a, b := spec(), spec()
	a.Selector = koshin.Selector{Groups: []string{"plant-1"}}
	b.Selector = koshin.Selector{Groups: []string{"plant-2"}}
	ida, idb := f.start(a), f.start(b)
	f.tick()
	f.install(f.assignments(ida, 0, ""), success)
	f.install(f.assignments(idb, 0, "")[3:], success)
	f.clock.Advance(6 * time.Hour)
	return f
}

// snapshot is everything a tick can change, in comparable form.
func (f *fixture) snapshot() string {
	f.t.Helper()
	var out string
	for _, id := range []int64{1, 2} {
		r := f.rollout(id)
		out += fmt.Sprintf("rollout %d: %s phase %d %q\n", id, r.State, r.Phase, r.HaltReason)
		for _, a := range f.assignments(id, -1, "") {
			out += fmt.Sprintf("  %s phase %d %s\n", a.DeviceID[:12], a.Phase, a.State)
		}
	}
	for _, action := range []string{"rollout.advance", "rollout.halt", "rollout.assign", "assignment.expire"} {
		out += fmt.Sprintf("audit %s: %d\n", action, f.auditCount(action))
	}
	kinds := f.notes.kinds()
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		out += fmt.Sprintf("notified %s: %d\n", k, kinds[k])
	}
	return out
}

// TestTickIdempotentAndRaceSafe: ticking twice, in sequence or at the same
// time from two engines (two server replicas on one store), ends in
// exactly the state one tick does: no device assigned twice, no phase
// skipped, no failure counted or notified twice.
func TestTickIdempotentAndRaceSafe(t *testing.T) {
	once := busyFleet(t)
	once.tick()
	want := once.snapshot()
	if r := once.rollout(1); r.Phase != 1 {
		t.Fatalf("setup: rollout 1 did not advance:\n%s", want)
	}
	if r := once.rollout(2); r.State != koshin.RolloutHalted {
		t.Fatalf("setup: rollout 2 did not halt:\n%s", want)
	}
	tests := map[string]func(f *fixture){
		"sequential": func(f *fixture) { f.tick(); f.tick() },
		"concurrent": func(f *fixture) {
			var wg sync.WaitGroup
			for _, e := range []*rollout.Engine{f.engine(), f.engine()} {
				wg.Go(func() {
					if err := e.Tick(f.ctx); err != nil {
						t.Errorf("Tick: %v", err)
					}
				})
			}
			wg.Wait()
		},
	}
	for name, run := range tests {
		t.Run(name, func(t *testing.T) {
			for round := range 3 {
				f := busyFleet(t)
				run(f)
				if got := f.snapshot(); got != want {
					t.Fatalf("round %d: state after two ticks differs from one tick:\n got: %s\nwant: %s", round, got, want)
				}
			}
		})
	}
}
