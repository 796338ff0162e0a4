package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

// testAssignNextRace: goroutines (and, where the backend can, a second
// handle on the same database, as a second server replica) race AssignNext
// on two rollouts over the same devices. However they interleave, every
// device ends with exactly one active assignment.
func testAssignNextRace(t *testing.T, e *env) {
	e.createRelease(t, "a.img", "board-a")
	e.createRelease(t, "b.img", "board-a")
	const n = 40
	e.fleet(t, "D", "board-a", n)
	r1 := e.startRollout(t, NewRollout("a.img", koshin.Phase{Percent: 100}))
	r2 := e.startRollout(t, NewRollout("b.img", koshin.Phase{Percent: 100}))
	stores := []koshin.Store{e.s}
	if e.b.OpenPeer != nil {
		stores = append(stores, e.b.OpenPeer(t, e.s, e.clock.Now))
	}
	var mu sync.Mutex
	assigned := map[string]int{}
	var wg sync.WaitGroup
	for g := range 8 {
		s, id := stores[g%len(stores)], []int64{r1.ID, r2.ID}[g%2]
		wg.Go(func() {
			for {
				as, err := s.AssignNext(e.ctx, id, 0, 3, e.clock.Now())
				if koshin.ErrorCode(err) == koshin.EUNAVAILABLE {
					continue // a busy database is a retry, never a double assignment
				} else if err != nil {
					t.Errorf("AssignNext: %v", err)
					return
				}
				if len(as) == 0 {
					return
				}
				mu.Lock()
				for _, a := range as {
					assigned[a.DeviceID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(assigned) != n {
		t.Fatalf("%d devices assigned, want %d", len(assigned), n)
	}
	for id, k := range assigned {
		if k != 1 {
			t.Fatalf("device %s assigned %d times", id, k)
		}
	}
	total := 0
	for _, id := range []int64{r1.ID, r2.ID} {
		as, err := e.s.FindAssignments(e.ctx, koshin.AssignmentFilter{RolloutID: id, Page: koshin.SeqPage{Limit: koshin.MaxLimit}})
		must(t, err)
		total += len(as)
	}
	if total != n {
		t.Fatalf("%d assignment rows, want %d", total, n)
	}
}

// testHaltCancelsPending: a halt cancels every assignment whose device has
// not started and returns those devices to the plan; devices already
// downloading carry on; a resume assigns the returned devices again; an
// abort is final.
func testHaltCancelsPending(t *testing.T, e *env) {
	e.createRelease(t, "a.img", "board-a")
	e.fleet(t, "D", "board-a", 6)
	r := e.startRollout(t, NewRollout("a.img", koshin.Phase{Percent: 100}))
	as, err := e.s.AssignNext(e.ctx, r.ID, 0, 6, e.clock.Now())
	must(t, err)
	e.report(t, as[0].DeviceID, "a.img", koshin.EventDownloading)
	e.report(t, as[1].DeviceID, "a.img", koshin.EventDownloading, koshin.EventInstalling)
	offered, err := e.s.TransitionAssignment(e.ctx, as[2].ID, koshin.AssignmentOffered, "", e.clock.Now())
	must(t, err)
	if offered.State != koshin.AssignmentOffered {
		t.Fatalf("offered = %+v", offered)
	}

	halted, n, err := e.s.HaltRollout(e.ctx, r.ID, "3 devices failed", e.clock.Now())
	must(t, err)
	if n != 4 || halted.State != koshin.RolloutHalted || halted.HaltReason != "3 devices failed" {
		t.Fatalf("halt cancelled %d (want 4), rollout %+v", n, halted)
	}
	for i, want := range []koshin.AssignmentState{koshin.AssignmentDownloading, koshin.AssignmentInstalling,
		koshin.AssignmentCancelled, koshin.AssignmentCancelled} {
		a, err := e.s.FindAssignmentByID(e.ctx, as[i].ID)
		must(t, err)
		if a.State != want {
			t.Fatalf("assignment %d is %s, want %s", i, a.State, want)
		}
	}
	if s := e.stats(t, r.ID, 0); s.Unassigned != 4 || s.InProgress != 2 || s.Cancelled != 0 {
		t.Fatalf("after halt: %+v", s)
	}
	_, _, err = e.s.HaltRollout(e.ctx, r.ID, "again", e.clock.Now())
	wantCode(t, err, koshin.ECONFLICT)
	_, err = e.s.AssignNext(e.ctx, r.ID, 0, 6, e.clock.Now())
	wantCode(t, err, koshin.ECONFLICT)
	_, err = e.s.TransitionAssignment(e.ctx, as[0].ID, koshin.AssignmentCancelled, "", e.clock.Now())
	wantCode(t, err, koshin.ECONFLICT) // started: only the device can end it

	resumed, err := e.s.ResumeRollout(e.ctx, r.ID, e.clock.Now())
	must(t, err)
	if resumed.State != koshin.RolloutRunning || resumed.HaltReason != "" {
		t.Fatalf("resumed %+v", resumed)
	}
	again, err := e.s.AssignNext(e.ctx, r.ID, 0, 6, e.clock.Now())
	must(t, err)
	if len(again) != 4 {
		t.Fatalf("resume reassigned %d, want 4", len(again))
	}
	_, n, err = e.s.AbortRollout(e.ctx, r.ID, "give up", e.clock.Now())
	must(t, err)
	if n != 4 {
		t.Fatalf("abort cancelled %d, want 4", n)
	}
	if s := e.stats(t, r.ID, 0); s.Unassigned != 0 || s.Cancelled != 4 {
		t.Fatalf("after abort: %+v", s)
	}
	_, err = e.s.ResumeRollout(e.ctx, r.ID, e.clock.Now())
	wantCode(t, err, koshin.ECONFLICT)
}

// testApproval: approval mode holds assignments for an administrator
// (the CCDS industrial flow); device events cannot skip the approval.
func testApproval(t *testing.T, e *env) {
	e.createRelease(t, "a.img", "board-a")
	devs := e.fleet(t, "D", "board-a", 3)
	r := NewRollout("a.img", koshin.Phase{Percent: 100})
	r.Mode = koshin.ModeApproval
	r = e.startRollout(t, r)
	as, err := e.s.AssignNext(e.ctx, r.ID, 0, 3, e.clock.Now())
	must(t, err)
	if as[0].State != koshin.AssignmentAwaitingApproval || !as[0].Deadline.IsZero() {
		t.Fatalf("approval assignment = %+v", as[0])
	}
	e.report(t, devs[0].ID, "a.img", koshin.EventDownloading)
	if a, _ := e.s.FindActiveAssignment(e.ctx, devs[0].ID); a.State != koshin.AssignmentAwaitingApproval {
		t.Fatalf("event skipped approval: %s", a.State)
	}
	n, err := e.s.ApproveAssignments(e.ctx, r.ID, []string{devs[1].ID}, e.clock.Now())
	must(t, err)
	if n != 1 {
		t.Fatalf("approved %d, want 1", n)
	}
	a, err := e.s.FindActiveAssignment(e.ctx, devs[1].ID)
	must(t, err)
	if a.State != koshin.AssignmentPending {
		t.Fatalf("approved assignment = %s", a.State)
	}
	equalTime(t, "deadline", a.Deadline, e.clock.Now().Add(time.Hour))
	n, err = e.s.ApproveAssignments(e.ctx, r.ID, nil, e.clock.Now())
	must(t, err)
	if n != 2 {
		t.Fatalf("approve all = %d, want 2", n)
	}
	_, err = e.s.ApproveAssignments(e.ctx, 9999, nil, e.clock.Now())
	wantCode(t, err, koshin.ENOTFOUND)
	_, err = e.s.ApproveAssignments(e.ctx, r.ID, []string{"x"}, e.clock.Now())
	wantCode(t, err, koshin.EINVALID)
}

// testSilentDevices: devices that stop reporting count as failed at their
// deadline, and progress refreshes the deadline.
func testSilentDevices(t *testing.T, e *env) {
	e.createRelease(t, "a.img", "board-a")
	e.fleet(t, "D", "board-a", 3)
	r := e.startRollout(t, NewRollout("a.img", koshin.Phase{Percent: 100}))
	as, err := e.s.AssignNext(e.ctx, r.ID, 0, 3, e.clock.Now())
	must(t, err)
	start := e.clock.Now()
	e.clock.Advance(30 * time.Minute)
	e.report(t, as[0].DeviceID, "a.img", koshin.EventDownloading)
	e.clock.Advance(31 * time.Minute)

	s := e.stats(t, r.ID, 0)
	if s.Failed != 2 || s.InProgress != 1 {
		t.Fatalf("overdue not counted as failed: %+v", s)
	}
	equalTime(t, "last finished", s.LastFinishedAt, start.Add(time.Hour))
	n, err := e.s.ExpireSilentAssignments(e.ctx, e.clock.Now())
	must(t, err)
	if n != 2 {
		t.Fatalf("expired %d, want 2", n)
	}
	silent, err := e.s.FindAssignmentByID(e.ctx, as[1].ID)
	must(t, err)
	if silent.State != koshin.AssignmentSilentFailed || !silent.Deadline.IsZero() {
		t.Fatalf("silent = %+v", silent)
	}
	equalTime(t, "finished", silent.FinishedAt, start.Add(time.Hour))
	// A late report is kept but does not revive the assignment.
	e.report(t, as[1].DeviceID, "a.img", koshin.EventCommitted)
	if a, _ := e.s.FindAssignmentByID(e.ctx, as[1].ID); a.State != koshin.AssignmentSilentFailed {
		t.Fatalf("late event revived assignment: %s", a.State)
	}
	if s2 := e.stats(t, r.ID, 0); s2.Failed != 2 || s2.InProgress != 1 {
		t.Fatalf("stats after sweep %+v", s2)
	}
	if n, _ := e.s.ExpireSilentAssignments(e.ctx, e.clock.Now()); n != 0 {
		t.Fatalf("second sweep expired %d", n)
	}
}

// testPhaseStats: every outcome lands in its bucket; the rate window
// counts recent starts.
func testPhaseStats(t *testing.T, e *env) {
	e.createRelease(t, "a.img", "board-a")
	e.fleet(t, "D", "board-a", 8)
	r := NewRollout("a.img", koshin.Phase{Percent: 100})
	r.Mode = koshin.ModeConsent
	r = e.startRollout(t, r)
	as, err := e.s.AssignNext(e.ctx, r.ID, 0, 6, e.clock.Now())
	must(t, err)
	e.report(t, as[0].DeviceID, "a.img", success...)
	e.report(t, as[1].DeviceID, "a.img", koshin.EventDownloading, koshin.EventFailed)
	e.report(t, as[2].DeviceID, "a.img", koshin.EventRejected)
	e.report(t, as[3].DeviceID, "a.img", koshin.EventDeclined)
	e.report(t, as[4].DeviceID, "a.img", koshin.EventPostponed)
	s := e.stats(t, r.ID, 0)
	want := koshin.PhaseStats{Phase: 0, Members: 8, Unassigned: 2, Waiting: 1, InProgress: 1, Succeeded: 1,
		Failed: 2, Declined: 1, AssignedRecently: 6, LastFinishedAt: e.clock.Now()}
	if *s != want {
		t.Fatalf("stats = %+v\nwant    %+v", *s, want)
	}
	if s.Started() != 5 {
		t.Fatalf("started = %d", s.Started())
	}
	e.clock.Advance(koshin.RateWindow)
	if s := e.stats(t, r.ID, 0); s.AssignedRecently != 0 {
		t.Fatalf("rate window still counts %d", s.AssignedRecently)
	}
	_, err = e.s.FindPhaseStats(e.ctx, 9999, 0, e.clock.Now())
	wantCode(t, err, koshin.ENOTFOUND)
	_, err = e.s.FindPhaseStats(e.ctx, r.ID, -1, e.clock.Now())
	wantCode(t, err, koshin.EINVALID)
}
