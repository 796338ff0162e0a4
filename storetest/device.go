package storetest

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

// testDevices: create and find, uniqueness of keys (CCDS STS01) and active
// serials (STS02), updates, touch.
func testDevices(t *testing.T, e *env) {
	d := e.createDevice(t, "SN-1", "board-a", func(d *koshin.Device) {
		d.Group, d.Tags, d.EncryptionKey = "plant-7", []string{"region=eu", "line-2", "region=eu"}, bytes.Repeat([]byte{7}, 32)
		d.CertExpiresAt = time.Date(2027, 1, 1, 0, 0, 0, 123456789, time.UTC)
	})
	got, err := e.s.FindDeviceByID(e.ctx, d.ID)
	must(t, err)
	if got.Serial != "SN-1" || got.HardwareID != "board-a" || !bytes.Equal(got.PublicKey, d.PublicKey) ||
		!bytes.Equal(got.EncryptionKey, d.EncryptionKey) || got.Group != "plant-7" || got.Status != koshin.DeviceActive {
		t.Fatalf("found %+v", got)
	}
	if !slices.Equal(got.Tags, []string{"line-2", "region=eu"}) {
		t.Fatalf("tags = %v, want sorted and deduplicated", got.Tags)
	}
	equalTime(t, "cert expiry", got.CertExpiresAt, time.Date(2027, 1, 1, 0, 0, 0, 123456000, time.UTC))
	if !reflect.DeepEqual(got.Inventory, d.Inventory) {
		t.Fatalf("inventory = %+v, want %+v", got.Inventory, d.Inventory)
	}
	if bySerial, err := e.s.FindDeviceBySerial(e.ctx, "SN-1"); err != nil || bySerial.ID != d.ID {
		t.Fatalf("FindDeviceBySerial = %v, %v", bySerial, err)
	}

	// Same key again: refused whatever the serial.
	dup := *d
	dup.Serial = "SN-2"
	wantCode(t, e.s.CreateDevice(e.ctx, &dup), koshin.ECONFLICT)
	// Same serial, other key: refused while the first is active.
	other := NewDevice(t, "SN-1", "board-a")
	wantCode(t, e.s.CreateDevice(e.ctx, other), koshin.ECONFLICT)

	bad := NewDevice(t, "SN-3", "board-a")
	bad.ID = d.ID // not the hash of its own key
	wantCode(t, e.s.CreateDevice(e.ctx, bad), koshin.EINVALID)

	_, err = e.s.FindDeviceByID(e.ctx, NewDevice(t, "x", "y").ID)
	wantCode(t, err, koshin.ENOTFOUND)
	_, err = e.s.FindDeviceByID(e.ctx, "not-an-id")
	wantCode(t, err, koshin.EINVALID)
	_, err = e.s.FindDeviceBySerial(e.ctx, "SN-404")
	wantCode(t, err, koshin.ENOTFOUND)

	testDeviceUpdate(t, e, d)
	testTouch(t, e, d)
}

func testDeviceUpdate(t *testing.T, e *env, d *koshin.Device) {
	group, tags, poll := "plant-9", []string{"canary"}, 15*time.Minute
	got, err := e.s.UpdateDevice(e.ctx, d.ID, koshin.DeviceUpdate{Group: &group, Tags: &tags, PollInterval: &poll})
	must(t, err)
	if got.Group != group || !slices.Equal(got.Tags, tags) || got.PollInterval != poll || got.Serial != d.Serial {
		t.Fatalf("updated = %+v", got)
	}
	list, err := e.s.FindDevices(e.ctx, koshin.DeviceFilter{Tags: []string{"region=eu"}})
	must(t, err)
	if len(list) != 0 {
		t.Fatal("old tag still indexed after update")
	}
	tooFast := time.Second
	_, err = e.s.UpdateDevice(e.ctx, d.ID, koshin.DeviceUpdate{PollInterval: &tooFast})
	wantCode(t, err, koshin.EINVALID)
	_, err = e.s.UpdateDevice(e.ctx, NewDevice(t, "x", "y").ID, koshin.DeviceUpdate{Group: &group})
	wantCode(t, err, koshin.ENOTFOUND)
}

func testTouch(t *testing.T, e *env, d *koshin.Device) {
	t1 := e.clock.Now().Add(time.Minute)
	must(t, e.s.TouchDevice(e.ctx, d.ID, t1))
	must(t, e.s.TouchDevice(e.ctx, d.ID, t1.Add(-30*time.Second))) // late, out of order
	got, err := e.s.FindDeviceByID(e.ctx, d.ID)
	must(t, err)
	equalTime(t, "last seen", got.LastSeenAt, t1)
	wantCode(t, e.s.TouchDevice(e.ctx, NewDevice(t, "x", "y").ID, t1), koshin.ENOTFOUND)

	other := e.createDevice(t, "SN-T", "board-a")
	t2 := t1.Add(time.Minute)
	n, err := e.s.TouchDevices(e.ctx, []koshin.Sighting{
		{DeviceID: d.ID, At: t2}, {DeviceID: other.ID, At: t2}, {DeviceID: NewDevice(t, "x", "y").ID, At: t2},
		{DeviceID: other.ID, At: t1}, // an older sighting later in the batch
	})
	must(t, err)
	if n != 3 {
		t.Fatalf("TouchDevices updated %d rows, want 3 (unknown device skipped)", n)
	}
	for _, id := range []string{d.ID, other.ID} {
		got, err := e.s.FindDeviceByID(e.ctx, id)
		must(t, err)
		equalTime(t, "batched last seen", got.LastSeenAt, t2)
	}
	_, err = e.s.TouchDevices(e.ctx, []koshin.Sighting{{DeviceID: "bad", At: t2}})
	wantCode(t, err, koshin.EINVALID)
	_, err = e.s.TouchDevices(e.ctx, make([]koshin.Sighting, koshin.MaxTouchBatch+1))
	wantCode(t, err, koshin.EINVALID)
}

// testDeviceFilters: every filter field narrows the list and the count.
func testDeviceFilters(t *testing.T, e *env) {
	seen := e.clock.Now()
	e.fleet(t, "EU", "board-a", 4, func(i int, d *koshin.Device) { d.Group, d.Tags = "plant-1", []string{"region=eu"} })
	e.fleet(t, "US", "board-b", 3, func(i int, d *koshin.Device) { d.Group, d.Tags = "plant-2", []string{"region=us", "canary"} })
	old := e.createDevice(t, "OLD-1", "board-a")
	must(t, e.s.TouchDevice(e.ctx, old.ID, seen))
	tests := []struct {
		f    koshin.DeviceFilter
		want int
	}{
		{koshin.DeviceFilter{}, 8},
		{koshin.DeviceFilter{Group: "plant-1"}, 4},
		{koshin.DeviceFilter{HardwareID: "board-b"}, 3},
		{koshin.DeviceFilter{Tags: []string{"region=us"}}, 3},
		{koshin.DeviceFilter{Tags: []string{"region=us", "canary"}}, 3},
		{koshin.DeviceFilter{Tags: []string{"region=eu", "canary"}}, 0},
		{koshin.DeviceFilter{SerialPrefix: "US-"}, 3},
		{koshin.DeviceFilter{SerialPrefix: "us-"}, 0}, // prefixes are case-sensitive on every backend
		{koshin.DeviceFilter{IDPrefix: old.ID[:10]}, 1},
		{koshin.DeviceFilter{Status: koshin.DeviceActive, HardwareID: "board-a"}, 5},
		{koshin.DeviceFilter{Status: koshin.DeviceDecommissioned}, 0},
		{koshin.DeviceFilter{SeenBefore: seen.Add(time.Second)}, 8},
		{koshin.DeviceFilter{SeenBefore: seen}, 7}, // never seen, plus not old (seen at exactly seen)
	}
	for i, tt := range tests {
		list, err := e.s.FindDevices(e.ctx, tt.f)
		must(t, err)
		n, err := e.s.CountDevices(e.ctx, tt.f)
		must(t, err)
		if len(list) != tt.want || n != tt.want {
			t.Errorf("filter %d %+v: listed %d, counted %d, want %d", i, tt.f, len(list), n, tt.want)
		}
	}
	q, err := koshin.ParseDeviceQuery("group:plant-2 tag:canary US")
	must(t, err)
	if n, err := e.s.CountDevices(e.ctx, q); err != nil || n != 3 {
		t.Fatalf("query count = %d, %v", n, err)
	}
	_, err = e.s.FindDevices(e.ctx, koshin.DeviceFilter{Status: "lost"})
	wantCode(t, err, koshin.EINVALID)
}

// testDevicePagination: walking pages by cursor visits every device once,
// in ID order; limits are bounded.
func testDevicePagination(t *testing.T, e *env) {
	devices := e.fleet(t, "P", "board-a", 23)
	var want []string
	for _, d := range devices {
		want = append(want, d.ID)
	}
	slices.Sort(want)
	var got []string
	f := koshin.DeviceFilter{Limit: 5}
	for {
		page, err := e.s.FindDevices(e.ctx, f)
		must(t, err)
		for _, d := range page {
			got = append(got, d.ID)
		}
		if len(page) < f.Limit {
			break
		}
		f.After = page[len(page)-1].ID
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged IDs = %v, want %v", got, want)
	}
	all, err := e.s.FindDevices(e.ctx, koshin.DeviceFilter{})
	must(t, err)
	if len(all) != 23 {
		t.Fatalf("default limit listed %d", len(all))
	}
	_, err = e.s.FindDevices(e.ctx, koshin.DeviceFilter{Limit: koshin.MaxLimit + 1})
	wantCode(t, err, koshin.EINVALID)
	_, err = e.s.FindDevices(e.ctx, koshin.DeviceFilter{After: "'; DROP TABLE devices; --"})
	wantCode(t, err, koshin.EINVALID)
}

// testDeviceReports: reports become the inventory; history grows only on
// change and pages both ways (CCDS SSS06, UPD09).
func testDeviceReports(t *testing.T, e *env) {
	d := e.createDevice(t, "SN-1", "board-a")
	inv := d.Inventory
	inv.Components = append([]koshin.Component{{Name: "app", Version: "3"}}, inv.Components...)
	now := e.clock.Now()
	for i, want := range []bool{true, false, false} {
		appended, err := e.s.RecordDeviceReport(e.ctx, d.ID, inv, now.Add(time.Duration(i)*time.Minute))
		must(t, err)
		if appended != want {
			t.Fatalf("report %d appended = %v, want %v", i, appended, want)
		}
	}
	inv.Security.FailedVerifications = 2
	appended, err := e.s.RecordDeviceReport(e.ctx, d.ID, inv, now.Add(5*time.Minute))
	must(t, err)
	if !appended {
		t.Fatal("changed report not appended")
	}
	_, err = e.s.RecordDeviceReport(e.ctx, d.ID, inv, now.Add(4*time.Minute)) // delivered late
	must(t, err)
	got, err := e.s.FindDeviceByID(e.ctx, d.ID)
	must(t, err)
	equalTime(t, "last seen", got.LastSeenAt, now.Add(5*time.Minute))
	if got.Inventory.Security.FailedVerifications != 2 || got.Inventory.Components[0].Name != "app" {
		t.Fatalf("inventory = %+v", got.Inventory)
	}
	history, err := e.s.FindDeviceReports(e.ctx, d.ID, koshin.SeqPage{})
	must(t, err)
	if len(history) != 2 || history[0].Seq >= history[1].Seq || history[1].Inventory.Security.FailedVerifications != 2 {
		t.Fatalf("history = %+v", history)
	}
	equalTime(t, "first report", history[0].ReceivedAt, now)
	newest, err := e.s.FindDeviceReports(e.ctx, d.ID, koshin.SeqPage{Desc: true, Limit: 1})
	must(t, err)
	if len(newest) != 1 || newest[0].Seq != history[1].Seq {
		t.Fatalf("newest = %+v", newest)
	}
	inv.Components = make([]koshin.Component, koshin.MaxComponents+1)
	_, err = e.s.RecordDeviceReport(e.ctx, d.ID, inv, now)
	wantCode(t, err, koshin.EINVALID)
	_, err = e.s.RecordDeviceReport(e.ctx, NewDevice(t, "x", "y").ID, d.Inventory, now)
	wantCode(t, err, koshin.ENOTFOUND)
	testFleetReports(t, e, history)
}

// testFleetReports: the fleet-wide feed interleaves every device's
// reports in sequence order and pages both ways.
func testFleetReports(t *testing.T, e *env, first []*koshin.DeviceReport) {
	d2 := e.createDevice(t, "SN-2", "board-b")
	inv := d2.Inventory
	inv.Components = []koshin.Component{{Name: "rootfs", Version: "9.9", ReleaseCounter: 99}}
	_, err := e.s.RecordDeviceReport(e.ctx, d2.ID, inv, e.clock.Now())
	must(t, err)
	all, err := e.s.FindFleetReports(e.ctx, koshin.SeqPage{})
	must(t, err)
	if len(all) != len(first)+1 || all[0].Seq != first[0].Seq || all[len(all)-1].DeviceID != d2.ID ||
		all[len(all)-1].Inventory.Components[0].Version != "9.9" {
		t.Fatalf("fleet reports = %+v", all)
	}
	after, err := e.s.FindFleetReports(e.ctx, koshin.SeqPage{Cursor: first[0].Seq, Limit: 1})
	must(t, err)
	if len(after) != 1 || after[0].Seq != all[1].Seq {
		t.Fatalf("page after %d = %+v", first[0].Seq, after)
	}
	newest, err := e.s.FindFleetReports(e.ctx, koshin.SeqPage{Desc: true, Limit: 1})
	must(t, err)
	if len(newest) != 1 || newest[0].DeviceID != d2.ID {
		t.Fatalf("newest = %+v", newest)
	}
	_, err = e.s.FindFleetReports(e.ctx, koshin.SeqPage{Cursor: -1})
	wantCode(t, err, koshin.EINVALID)
}

// testDecommission: a decommissioned device is refused, loses its active
// assignment, frees its serial, and stays on record.
func testDecommission(t *testing.T, e *env) {
	e.createRelease(t, "rootfs-2.img", "board-a")
	d := e.createDevice(t, "SN-1", "board-a")
	r := e.startRollout(t, NewRollout("rootfs-2.img", koshin.Phase{Percent: 100}))
	_, err := e.s.AssignNext(e.ctx, r.ID, 0, 10, e.clock.Now())
	must(t, err)
	got, err := e.s.DecommissionDevice(e.ctx, d.ID, e.clock.Now())
	must(t, err)
	if got.Status != koshin.DeviceDecommissioned || got.DecommissionedAt.IsZero() {
		t.Fatalf("decommissioned = %+v", got)
	}
	_, err = e.s.FindActiveAssignment(e.ctx, d.ID)
	wantCode(t, err, koshin.ENOTFOUND)
	wantCode(t, e.s.TouchDevice(e.ctx, d.ID, e.clock.Now()), koshin.EFORBIDDEN)
	_, err = e.s.RecordDeviceReport(e.ctx, d.ID, d.Inventory, e.clock.Now())
	wantCode(t, err, koshin.EFORBIDDEN)
	_, err = e.s.RecordEvent(e.ctx, &koshin.Event{DeviceID: d.ID, EventID: "e1", Type: koshin.EventTamper}, e.clock.Now())
	wantCode(t, err, koshin.EFORBIDDEN)
	again, err := e.s.DecommissionDevice(e.ctx, d.ID, e.clock.Now().Add(time.Hour))
	must(t, err)
	equalTime(t, "decommissioned at", again.DecommissionedAt, got.DecommissionedAt)

	// The physical unit can come back with a new key (factory reset).
	reborn := e.createDevice(t, "SN-1", "board-a")
	bySerial, err := e.s.FindDeviceBySerial(e.ctx, "SN-1")
	must(t, err)
	if bySerial.ID != reborn.ID {
		t.Fatal("serial lookup did not prefer the active device")
	}
}
