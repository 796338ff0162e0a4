package storetest

import (
	"fmt"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

var eventSeq atomic.Int64

// report records device events in order, each with a fresh event ID.
func (e *env) report(t *testing.T, deviceID, release string, types ...koshin.EventType) {
	t.Helper()
	for _, typ := range types {
		ev := &koshin.Event{DeviceID: deviceID, EventID: fmt.Sprintf("ev-%d", eventSeq.Add(1)), Type: typ, ReleaseName: release}
		_, err := e.s.RecordEvent(e.ctx, ev, e.clock.Now())
		must(t, err)
	}
}

var success = []koshin.EventType{koshin.EventDownloading, koshin.EventDownloaded, koshin.EventInstalling, koshin.EventRebooting, koshin.EventCommitted}

func (e *env) stats(t *testing.T, id int64, phase int) *koshin.PhaseStats {
	t.Helper()
	s, err := e.s.FindPhaseStats(e.ctx, id, phase, e.clock.Now())
	must(t, err)
	return s
}

func deviceIDs(as []*koshin.Assignment) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.DeviceID)
	}
	slices.Sort(out)
	return out
}

// testRolloutLifecycle: the state machine and its refusals.
func testRolloutLifecycle(t *testing.T, e *env) {
	e.createRelease(t, "rootfs-2.img", "board-a")
	e.fleet(t, "D", "board-a", 10)
	wantCode(t, e.s.CreateRollout(e.ctx, NewRollout("nope.img", koshin.Phase{Percent: 100})), koshin.ENOTFOUND)
	wantCode(t, e.s.CreateRollout(e.ctx, NewRollout("rootfs-2.img")), koshin.EINVALID)

	r := NewRollout("rootfs-2.img", koshin.Phase{Percent: 10, Soak: time.Hour, Threshold: &koshin.Threshold{MaxFailures: 1}},
		koshin.Phase{Percent: 100, Manual: true})
	r.Window = &koshin.MaintenanceWindow{Cron: "0 2 * * *", Duration: 2 * time.Hour, TimeZone: "UTC"}
	r.StratifyTags, r.RatePerMinute = []string{"region=eu"}, 30
	must(t, e.s.CreateRollout(e.ctx, r))
	if r.ID == 0 || r.State != koshin.RolloutDraft || r.CreatedAt.IsZero() {
		t.Fatalf("created %+v", r)
	}
	got, err := e.s.FindRolloutByID(e.ctx, r.ID)
	must(t, err)
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("found %+v, want %+v", got, r)
	}
	_, err = e.s.PauseRollout(e.ctx, r.ID, e.clock.Now())
	wantCode(t, err, koshin.ECONFLICT)
	_, err = e.s.ResumeRollout(e.ctx, r.ID, e.clock.Now())
	wantCode(t, err, koshin.ECONFLICT)
	_, err = e.s.AssignNext(e.ctx, r.ID, 0, 1, e.clock.Now())
	wantCode(t, err, koshin.ECONFLICT)

	started, err := e.s.StartRollout(e.ctx, r.ID, e.clock.Now())
	must(t, err)
	if started.State != koshin.RolloutRunning || started.Phase != 0 || started.Eligible != 10 {
		t.Fatalf("started %+v", started)
	}
	equalTime(t, "phase start", started.PhaseStartedAt, e.clock.Now())
	_, err = e.s.StartRollout(e.ctx, r.ID, e.clock.Now())
	wantCode(t, err, koshin.ECONFLICT)
	testRolloutTransitions(t, e, r.ID)
}

func testRolloutTransitions(t *testing.T, e *env, id int64) {
	_, err := e.s.AssignNext(e.ctx, id, 1, 1, e.clock.Now())
	wantCode(t, err, koshin.ECONFLICT)
	_, err = e.s.AssignNext(e.ctx, id, 0, 0, e.clock.Now())
	wantCode(t, err, koshin.EINVALID)
	paused, err := e.s.PauseRollout(e.ctx, id, e.clock.Now())
	must(t, err)
	if paused.State != koshin.RolloutPaused {
		t.Fatalf("paused = %s", paused.State)
	}
	_, err = e.s.AssignNext(e.ctx, id, 0, 1, e.clock.Now())
	wantCode(t, err, koshin.ECONFLICT)
	_, err = e.s.ResumeRollout(e.ctx, id, e.clock.Now())
	must(t, err)

	rate := 5
	upd, err := e.s.UpdateRollout(e.ctx, id, koshin.RolloutUpdate{RatePerMinute: &rate, ClearWindow: true}, e.clock.Now())
	must(t, err)
	if upd.RatePerMinute != 5 || upd.Window != nil {
		t.Fatalf("updated %+v", upd)
	}
	neg := -1
	_, err = e.s.UpdateRollout(e.ctx, id, koshin.RolloutUpdate{RatePerMinute: &neg}, e.clock.Now())
	wantCode(t, err, koshin.EINVALID)

	_, err = e.s.AdvanceRollout(e.ctx, id, 1, e.clock.Now())
	wantCode(t, err, koshin.ECONFLICT)
	e.clock.Advance(time.Minute)
	adv, err := e.s.AdvanceRollout(e.ctx, id, 0, e.clock.Now())
	must(t, err)
	if adv.Phase != 1 || adv.State != koshin.RolloutRunning {
		t.Fatalf("advanced %+v", adv)
	}
	equalTime(t, "phase start", adv.PhaseStartedAt, e.clock.Now())
	_, err = e.s.AdvanceRollout(e.ctx, id, 0, e.clock.Now()) // a second engine replica's late call
	wantCode(t, err, koshin.ECONFLICT)
	done, err := e.s.AdvanceRollout(e.ctx, id, 1, e.clock.Now())
	must(t, err)
	if done.State != koshin.RolloutCompleted || done.FinishedAt.IsZero() {
		t.Fatalf("completed %+v", done)
	}
	_, err = e.s.UpdateRollout(e.ctx, id, koshin.RolloutUpdate{RatePerMinute: &rate}, e.clock.Now())
	wantCode(t, err, koshin.ECONFLICT)
	_, _, err = e.s.AbortRollout(e.ctx, id, "too late", e.clock.Now())
	wantCode(t, err, koshin.ECONFLICT)
	testRolloutList(t, e, id)
}

func testRolloutList(t *testing.T, e *env, completed int64) {
	draft := NewRollout("rootfs-2.img", koshin.Phase{Percent: 100})
	must(t, e.s.CreateRollout(e.ctx, draft))
	aborted, n, err := e.s.AbortRollout(e.ctx, draft.ID, "changed my mind", e.clock.Now())
	must(t, err)
	if aborted.State != koshin.RolloutAborted || n != 0 || aborted.HaltReason != "changed my mind" {
		t.Fatalf("aborted %+v, %d", aborted, n)
	}
	_, _, err = e.s.AbortRollout(e.ctx, draft.ID, "", e.clock.Now())
	wantCode(t, err, koshin.EINVALID)
	third := NewRollout("rootfs-2.img", koshin.Phase{Percent: 100})
	must(t, e.s.CreateRollout(e.ctx, third))

	list, err := e.s.FindRollouts(e.ctx, koshin.RolloutFilter{Page: koshin.SeqPage{Desc: true, Limit: 2}})
	must(t, err)
	if len(list) != 2 || list[0].ID != third.ID || list[1].ID != draft.ID {
		t.Fatalf("newest first = %v", list)
	}
	list, err = e.s.FindRollouts(e.ctx, koshin.RolloutFilter{Page: koshin.SeqPage{Desc: true, Cursor: draft.ID}})
	must(t, err)
	if len(list) != 1 || list[0].ID != completed {
		t.Fatalf("second page = %v", list)
	}
	list, err = e.s.FindRollouts(e.ctx, koshin.RolloutFilter{State: koshin.RolloutCompleted, ReleaseName: "rootfs-2.img"})
	must(t, err)
	if len(list) != 1 || list[0].ID != completed {
		t.Fatalf("completed = %v", list)
	}
}

// testRolloutPlan: the plan covers exactly the eligible devices (active,
// selected, fitting the release), sizes phases from percentages, samples
// the canary across strata, and is reproducible from its seed.
func testRolloutPlan(t *testing.T, e *env) {
	e.createRelease(t, "rootfs-2.img", "board-a", "board-b")
	region := func(r string) func(int, *koshin.Device) {
		return func(_ int, d *koshin.Device) { d.Tags, d.Group = []string{"region=" + r}, "fleet" }
	}
	e.fleet(t, "AEU", "board-a", 60, region("eu"))
	e.fleet(t, "AUS", "board-a", 30, region("us"))
	e.fleet(t, "BEU", "board-b", 10, region("eu"))
	e.fleet(t, "C", "board-c", 5, region("eu")) // the release does not fit
	gone := e.fleet(t, "GONE", "board-a", 3, region("eu"))
	for _, d := range gone {
		_, err := e.s.DecommissionDevice(e.ctx, d.ID, e.clock.Now())
		must(t, err)
	}
	e.fleet(t, "OTHER", "board-a", 4) // not in the selected group

	plan := func() *koshin.Rollout {
		r := NewRollout("rootfs-2.img", koshin.Phase{Percent: 10}, koshin.Phase{Percent: 50}, koshin.Phase{Percent: 100})
		r.Selector, r.StratifyTags = koshin.Selector{Groups: []string{"fleet"}}, []string{"region=eu", "region=us"}
		return e.startRollout(t, r)
	}
	r := plan()
	if r.Eligible != 100 {
		t.Fatalf("eligible = %d, want 100", r.Eligible)
	}
	for phase, want := range []int{10, 40, 50} {
		if s := e.stats(t, r.ID, phase); s.Members != want || s.Unassigned != want {
			t.Fatalf("phase %d stats %+v, want %d members", phase, s, want)
		}
	}
	canary, err := e.s.AssignNext(e.ctx, r.ID, 0, koshin.MaxLimit, e.clock.Now())
	must(t, err)
	strata := map[string]int{}
	for _, a := range canary {
		d, err := e.s.FindDeviceByID(e.ctx, a.DeviceID)
		must(t, err)
		strata[d.Serial[:3]]++
	}
	if want := map[string]int{"AEU": 6, "AUS": 3, "BEU": 1}; !reflect.DeepEqual(strata, want) {
		t.Fatalf("canary strata = %v, want %v", strata, want)
	}
	_, n, err := e.s.AbortRollout(e.ctx, r.ID, "replan", e.clock.Now())
	must(t, err)
	if n != 10 {
		t.Fatalf("abort cancelled %d, want 10", n)
	}
	again, err := e.s.AssignNext(e.ctx, plan().ID, 0, koshin.MaxLimit, e.clock.Now())
	must(t, err)
	if !slices.Equal(deviceIDs(again), deviceIDs(canary)) {
		t.Fatal("same seed and fleet planned a different canary")
	}
	testExplicitSelector(t, e, canary[0].DeviceID)
}

func testExplicitSelector(t *testing.T, e *env, busy string) {
	d := e.createDevice(t, "PICKED", "board-b")
	r := NewRollout("rootfs-2.img", koshin.Phase{Count: 5})
	r.Selector = koshin.Selector{DeviceIDs: []string{d.ID, busy}}
	r = e.startRollout(t, r)
	if r.Eligible != 2 {
		t.Fatalf("eligible = %d, want 2", r.Eligible)
	}
	as, err := e.s.AssignNext(e.ctx, r.ID, 0, 10, e.clock.Now())
	must(t, err)
	if len(as) != 1 || as[0].DeviceID != d.ID {
		t.Fatalf("assigned %v; the busy device must wait", deviceIDs(as))
	}
	if s := e.stats(t, r.ID, 0); s.Unassigned != 1 {
		t.Fatalf("busy device not left planned: %+v", s)
	}
}

// testOneActiveAssignment: a device busy in one rollout is not assigned by
// another until its assignment ends.
func testOneActiveAssignment(t *testing.T, e *env) {
	e.createRelease(t, "a.img", "board-a")
	e.createRelease(t, "b.img", "board-a")
	devs := e.fleet(t, "D", "board-a", 5)
	r1 := e.startRollout(t, NewRollout("a.img", koshin.Phase{Percent: 100}))
	r2 := e.startRollout(t, NewRollout("b.img", koshin.Phase{Percent: 100}))
	first, err := e.s.AssignNext(e.ctx, r1.ID, 0, 10, e.clock.Now())
	must(t, err)
	if len(first) != 5 || first[0].State != koshin.AssignmentPending || first[0].ReleaseName != "a.img" || first[0].ID == 0 {
		t.Fatalf("first = %+v", first)
	}
	equalTime(t, "deadline", first[0].Deadline, e.clock.Now().Add(time.Hour))
	second, err := e.s.AssignNext(e.ctx, r2.ID, 0, 10, e.clock.Now())
	must(t, err)
	if len(second) != 0 {
		t.Fatalf("busy devices assigned again: %v", deviceIDs(second))
	}
	active, err := e.s.FindActiveAssignment(e.ctx, devs[0].ID)
	must(t, err)
	if active.RolloutID != r1.ID {
		t.Fatalf("active = %+v", active)
	}
	for _, d := range devs[:3] {
		e.report(t, d.ID, "a.img", success...)
	}
	second, err = e.s.AssignNext(e.ctx, r2.ID, 0, 10, e.clock.Now())
	must(t, err)
	if len(second) != 3 {
		t.Fatalf("freed devices assigned %d, want 3", len(second))
	}
	_, err = e.s.FindActiveAssignment(e.ctx, e.createDevice(t, "IDLE", "board-a").ID)
	wantCode(t, err, koshin.ENOTFOUND)
}
