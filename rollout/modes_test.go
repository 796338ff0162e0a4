package rollout_test

import (
	"testing"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/rollout"
)

func approveAll() rollout.Approval { return rollout.Approval{All: true} }

// TestApprovalMode: in the industrial flow no device is offered anything
// until an administrator approves it, by device or by group; then it
// proceeds as in automatic mode.
func TestApprovalMode(t *testing.T) {
	f := newFixture(t, 100)
	s := spec()
	s.Phases[0].Percent = 40
	s.Mode = koshin.ModeApproval
	id := f.start(s)
	f.tick()
	as := f.assignments(id, 0, koshin.AssignmentAwaitingApproval)
	if len(as) != 40 {
		t.Fatalf("%d awaiting approval, want 40", len(as))
	}
	assertNothingOffered(t, f, nil)

	for _, bad := range []rollout.Approval{{}, {All: true, Group: "plant-1"}, {Group: "bad group"}, {DeviceIDs: []string{"xyz"}}} {
		_, err := f.svc.Approve(f.ctx, operator, id, bad)
		wantCode(t, err, koshin.EINVALID)
	}
	n, err := f.svc.Approve(f.ctx, operator, id, rollout.Approval{DeviceIDs: []string{as[0].DeviceID}})
	if err != nil || n != 1 {
		t.Fatalf("Approve(device) = %d, %v", n, err)
	}
	o := f.checkIn(as[0].DeviceID)
	if o == nil || o.Mode != koshin.ModeAutomatic {
		t.Fatalf("approved device got %+v, want an automatic offer", o)
	}
	n, err = f.svc.Approve(f.ctx, operator, id, rollout.Approval{Group: "plant-2"})
	if err != nil {
		t.Fatal(err)
	}
	inGroup := map[string]bool{}
	for _, d := range f.devices {
		inGroup[d.ID] = d.Group == "plant-2"
	}
	want := 0
	for _, a := range as[1:] {
		if inGroup[a.DeviceID] {
			want++
		}
	}
	if n != want {
		t.Fatalf("Approve(group) = %d, want %d", n, want)
	}
	for _, a := range as[1:] {
		if got := f.checkIn(a.DeviceID) != nil; got != inGroup[a.DeviceID] {
			t.Fatalf("device in plant-2=%v offered=%v", inGroup[a.DeviceID], got)
		}
	}
	if got := f.auditCount("rollout.approve"); got != 6 {
		t.Fatalf("%d approve audit entries, want 6 (4 refused, 2 done)", got)
	}
}

// TestApproveNeedsApprovalMode: approvals make no sense elsewhere.
func TestApproveNeedsApprovalMode(t *testing.T) {
	f := newFixture(t, 10)
	id := f.start(spec())
	_, err := f.svc.Approve(f.ctx, operator, id, approveAll())
	wantCode(t, err, koshin.EINVALID)
}

// TestUserChoice: in consent mode the device's user may postpone (the
// device is offered again later) or decline (the device is done, not
// failed); in forced mode the administrator overrides both (CCDS UPD11).
func TestUserChoice(t *testing.T) {
	tests := []struct {
		mode       koshin.RolloutMode
		event      koshin.EventType
		wantState  koshin.AssignmentState
		wantOffer  bool // at the next check-in
		wantFailed int
	}{
		{koshin.ModeConsent, koshin.EventPostponed, koshin.AssignmentPostponed, true, 0},
		{koshin.ModeConsent, koshin.EventDeclined, koshin.AssignmentDeclined, false, 0},
		{koshin.ModeForced, koshin.EventPostponed, koshin.AssignmentOffered, true, 0},
		{koshin.ModeForced, koshin.EventDeclined, koshin.AssignmentOffered, true, 0},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode)+"/"+string(tt.event), func(t *testing.T) {
			f := newFixture(t, 10)
			s := spec()
			s.Mode = tt.mode
			id := f.start(s)
			f.tick()
			a := f.assignments(id, 0, "")[0]
			if o := f.checkIn(a.DeviceID); o == nil || o.Mode != tt.mode {
				t.Fatalf("offer %+v, want mode %s", o, tt.mode)
			}
			f.report(a.DeviceID, tt.event)
			got, err := f.db.FindAssignmentByID(f.ctx, a.ID)
			if err != nil || got.State != tt.wantState {
				t.Fatalf("state %v (%v), want %s", got.State, err, tt.wantState)
			}
			o := f.checkIn(a.DeviceID)
			if (o != nil) != tt.wantOffer {
				t.Fatalf("offer after %s = %+v, want offered=%v", tt.event, o, tt.wantOffer)
			}
			if st := f.stats(id, 0); st.Failed != tt.wantFailed {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestRecordEventsIdempotent: a device retrying a batch whose answer it
// lost is counted, audited and notified once.
func TestRecordEventsIdempotent(t *testing.T) {
	f := newFixture(t, 10)
	s := spec()
	s.Threshold = koshin.Threshold{MaxFailures: 2}
	id := f.start(s)
	f.tick()
	a := f.assignments(id, 0, "")[0]
	f.checkIn(a.DeviceID)
	batch := []koshin.Event{f.event(koshin.EventDownloading), f.event(koshin.EventFailed)}
	for i, want := range []int{2, 0, 0} {
		n, err := f.svc.RecordEvents(f.ctx, a.DeviceID, batch)
		if err != nil || n != want {
			t.Fatalf("attempt %d: RecordEvents = %d, %v; want %d new", i, n, err, want)
		}
	}
	if st := f.stats(id, 0); st.Failed != 1 {
		t.Fatalf("failed = %d, want 1", st.Failed)
	}
	f.tick()
	if r := f.rollout(id); r.State != koshin.RolloutRunning {
		t.Fatalf("one failure counted twice: rollout %s", r.State)
	}
	wantKinds(t, f.notes, map[rollout.Kind]int{rollout.KindFailed: 1})
	if got := f.auditCount("assignment.failed"); got != 1 {
		t.Fatalf("%d failure audit entries, want 1", got)
	}
}

// TestRecordEventsValidation: a bad event rejects the whole batch, and
// the device ID comes from the authenticated device, not the body.
func TestRecordEventsValidation(t *testing.T) {
	f := newFixture(t, 10)
	id := f.start(spec())
	f.tick()
	a := f.assignments(id, 0, "")[0]
	f.checkIn(a.DeviceID)
	good := f.event(koshin.EventDownloading)
	bad := f.event("exploded")
	_, err := f.svc.RecordEvents(f.ctx, a.DeviceID, []koshin.Event{good, bad})
	wantCode(t, err, koshin.EINVALID)
	_, err = f.svc.RecordEvents(f.ctx, a.DeviceID, nil)
	wantCode(t, err, koshin.EINVALID)
	if got, _ := f.db.FindAssignmentByID(f.ctx, a.ID); got.State != koshin.AssignmentOffered {
		t.Fatalf("rejected batch moved the assignment to %s", got.State)
	}
	other := f.devices[0].ID
	if other == a.DeviceID {
		other = f.devices[1].ID
	}
	spoof := f.event(koshin.EventFailed)
	spoof.DeviceID = a.DeviceID
	if _, err := f.svc.RecordEvents(f.ctx, other, []koshin.Event{spoof}); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.db.FindAssignmentByID(f.ctx, a.ID); got.State != koshin.AssignmentOffered {
		t.Fatalf("another device's report moved the assignment to %s", got.State)
	}
}
