package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

// testEvents: events are stored with the server's time, move the matching
// assignment, and list and count by filter (CCDS UPD09, EN 303 645 5.10-1).
func testEvents(t *testing.T, e *env) {
	e.createRelease(t, "a.img", "board-a")
	d1, d2 := e.createDevice(t, "SN-1", "board-a"), e.createDevice(t, "SN-2", "board-a")
	r := e.startRollout(t, NewRollout("a.img", koshin.Phase{Percent: 100}))
	_, err := e.s.AssignNext(e.ctx, r.ID, 0, 2, e.clock.Now())
	must(t, err)

	ev := &koshin.Event{DeviceID: d1.ID, EventID: "e-1", Type: koshin.EventFailed, ReleaseName: "a.img",
		Reason: "health-check", Detail: "service x did not start", DeviceTime: time.Date(1970, 1, 1, 0, 0, 1, 0, time.UTC)}
	created, err := e.s.RecordEvent(e.ctx, ev, e.clock.Now())
	must(t, err)
	if !created || ev.Seq == 0 || ev.AssignmentID == 0 {
		t.Fatalf("recorded %+v created=%v", ev, created)
	}
	equalTime(t, "received", ev.ReceivedAt, e.clock.Now())
	a, err := e.s.FindAssignmentByID(e.ctx, ev.AssignmentID)
	must(t, err)
	if a.State != koshin.AssignmentFailed || a.Reason != "health-check" || a.FinishedAt.IsZero() {
		t.Fatalf("assignment after failure = %+v", a)
	}
	// Another release's event does not touch the device's assignment.
	other := &koshin.Event{DeviceID: d2.ID, EventID: "e-2", Type: koshin.EventFailed, ReleaseName: "z.img"}
	_, err = e.s.RecordEvent(e.ctx, other, e.clock.Now())
	must(t, err)
	if other.AssignmentID != 0 {
		t.Fatal("event for another release moved an assignment")
	}
	if a, err := e.s.FindActiveAssignment(e.ctx, d2.ID); err != nil || a.State != koshin.AssignmentPending {
		t.Fatalf("unrelated event moved assignment: %+v, %v", a, err)
	}
	e.clock.Advance(time.Hour)
	_, err = e.s.RecordEvent(e.ctx, &koshin.Event{DeviceID: d2.ID, EventID: "e-3", Type: koshin.EventTamper, Detail: "case opened"}, e.clock.Now())
	must(t, err)

	_, err = e.s.RecordEvent(e.ctx, &koshin.Event{DeviceID: NewDevice(t, "x", "y").ID, EventID: "e", Type: koshin.EventLockout}, e.clock.Now())
	wantCode(t, err, koshin.ENOTFOUND)
	for _, bad := range []*koshin.Event{
		{DeviceID: d1.ID, EventID: "", Type: koshin.EventFailed},
		{DeviceID: d1.ID, EventID: "e", Type: "exploded"},
		{DeviceID: d1.ID, EventID: "e", Type: koshin.EventFailed, Detail: strings.Repeat("x", koshin.MaxTextLen+1)},
	} {
		_, err = e.s.RecordEvent(e.ctx, bad, e.clock.Now())
		wantCode(t, err, koshin.EINVALID)
	}
	testEventQueries(t, e, d1.ID, d2.ID)
}

func testEventQueries(t *testing.T, e *env, d1, d2 string) {
	tests := []struct {
		f    koshin.EventFilter
		want []string
	}{
		{koshin.EventFilter{}, []string{"e-1", "e-2", "e-3"}},
		{koshin.EventFilter{DeviceID: d2}, []string{"e-2", "e-3"}},
		{koshin.EventFilter{Type: koshin.EventFailed}, []string{"e-1", "e-2"}},
		{koshin.EventFilter{Since: e.clock.Now()}, []string{"e-3"}},
		{koshin.EventFilter{Page: koshin.SeqPage{Desc: true, Limit: 2}}, []string{"e-3", "e-2"}},
	}
	for i, tt := range tests {
		list, err := e.s.FindEvents(e.ctx, tt.f)
		must(t, err)
		var ids []string
		for _, ev := range list {
			ids = append(ids, ev.EventID)
		}
		if strings.Join(ids, ",") != strings.Join(tt.want, ",") {
			t.Errorf("filter %d: %v, want %v", i, ids, tt.want)
		}
	}
	first, err := e.s.FindEvents(e.ctx, koshin.EventFilter{DeviceID: d1})
	must(t, err)
	if first[0].Detail != "service x did not start" || first[0].Reason != "health-check" {
		t.Fatalf("stored event = %+v", first[0])
	}
	equalTime(t, "device time", first[0].DeviceTime, time.Date(1970, 1, 1, 0, 0, 1, 0, time.UTC))
	counts, err := e.s.CountEventsByType(e.ctx, time.Time{})
	must(t, err)
	if counts[koshin.EventFailed] != 2 || counts[koshin.EventTamper] != 1 || len(counts) != 2 {
		t.Fatalf("counts = %v", counts)
	}
	recent, err := e.s.CountEventsByType(e.ctx, e.clock.Now())
	must(t, err)
	if recent[koshin.EventFailed] != 0 || recent[koshin.EventTamper] != 1 {
		t.Fatalf("recent counts = %v", recent)
	}
}

// testEventIdempotency: a retried report (same device, same event ID) is
// stored once and counted once; the same ID from another device is a
// different event.
func testEventIdempotency(t *testing.T, e *env) {
	e.createRelease(t, "a.img", "board-a")
	d1, d2 := e.createDevice(t, "SN-1", "board-a"), e.createDevice(t, "SN-2", "board-a")
	r := e.startRollout(t, NewRollout("a.img", koshin.Phase{Percent: 100}))
	_, err := e.s.AssignNext(e.ctx, r.ID, 0, 2, e.clock.Now())
	must(t, err)
	first := &koshin.Event{DeviceID: d1.ID, EventID: "retry-me", Type: koshin.EventFailed, ReleaseName: "a.img", Detail: "first"}
	created, err := e.s.RecordEvent(e.ctx, first, e.clock.Now())
	must(t, err)
	if !created {
		t.Fatal("first report not created")
	}
	e.clock.Advance(time.Minute)
	retry := &koshin.Event{DeviceID: d1.ID, EventID: "retry-me", Type: koshin.EventFailed, ReleaseName: "a.img", Detail: "retried"}
	created, err = e.s.RecordEvent(e.ctx, retry, e.clock.Now())
	must(t, err)
	if created || retry.Seq != first.Seq || retry.Detail != "first" || !retry.ReceivedAt.Equal(first.ReceivedAt) {
		t.Fatalf("retry created=%v event=%+v", created, retry)
	}
	if s := e.stats(t, r.ID, 0); s.Failed != 1 {
		t.Fatalf("retried failure counted %d times", s.Failed)
	}
	same := &koshin.Event{DeviceID: d2.ID, EventID: "retry-me", Type: koshin.EventCommitted, ReleaseName: "a.img"}
	created, err = e.s.RecordEvent(e.ctx, same, e.clock.Now())
	must(t, err)
	if !created {
		t.Fatal("another device's event with the same ID was dropped")
	}
	list, err := e.s.FindEvents(e.ctx, koshin.EventFilter{})
	must(t, err)
	if len(list) != 2 {
		t.Fatalf("%d events stored, want 2", len(list))
	}
}
