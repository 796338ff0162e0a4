package fleetfacts_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/anomaly"
	"github.com/koshin-ota/koshin/compliance"
	"github.com/koshin-ota/koshin/fleetfacts"
	"github.com/koshin-ota/koshin/sqlite"
	"github.com/koshin-ota/koshin/storetest"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t      *testing.T
	ctx    context.Context
	clock  *storetest.Clock
	st     *sqlite.DB
	fleet  *fleetfacts.Fleet
	events int
}

func newFixture(t *testing.T) *fixture {
	clock := storetest.NewClock(t0.AddDate(0, 0, -60))
	st := sqlite.NewDB(filepath.Join(t.TempDir(), "koshin.db"))
	st.Now = clock.Now
	f := &fixture{t: t, ctx: t.Context(), clock: clock, st: st}
	must(t, st.Open(f.ctx))
	t.Cleanup(func() { st.Close() })
	f.fleet = &fleetfacts.Fleet{Store: st, PollInterval: time.Hour, PollJitter: 10 * time.Minute, Now: clock.Now}
	return f
}

// device enrolls a device and records its first report.
func (f *fixture) device(serial, hw string, mutate func(*koshin.Device)) *koshin.Device {
	f.t.Helper()
	d := storetest.NewDevice(f.t, serial, hw)
	if mutate != nil {
		mutate(d)
	}
	must(f.t, f.st.CreateDevice(f.ctx, d))
	f.report(d)
	return d
}

// report records d's inventory as its latest report.
func (f *fixture) report(d *koshin.Device) {
	f.t.Helper()
	_, err := f.st.RecordDeviceReport(f.ctx, d.ID, d.Inventory, f.clock.Now())
	must(f.t, err)
}

func (f *fixture) event(d *koshin.Device, typ koshin.EventType, release string) {
	f.t.Helper()
	f.events++
	_, err := f.st.RecordEvent(f.ctx, &koshin.Event{DeviceID: d.ID, EventID: fmt.Sprint("e", f.events), Type: typ, ReleaseName: release}, f.clock.Now())
	must(f.t, err)
}

// at sets the clock.
func (f *fixture) at(t time.Time) { f.clock.Advance(t.Sub(f.clock.Now())) }

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

// A fleet with every kind of observation yields exactly the facts it
// should: devices that never reported and retired ones do not count,
// events and audit entries outside the window do not count, and patch
// latency counts only the devices that needed the security release.
func TestFacts(t *testing.T) {
	f := newFixture(t)
	must(t, f.st.CreateRelease(f.ctx, storetest.NewRelease("rootfs-1.img", 1, "board-a", "board-b")))
	var a []*koshin.Device
	for i := range 8 {
		a = append(a, f.device(fmt.Sprintf("A-%d", i), "board-a", func(d *koshin.Device) {
			d.Inventory.Settings.Automatic = i%4 != 0     // 2 of 8 manual
			d.Inventory.Settings.Notifications = i%2 == 0 // 4 of 8
			d.Inventory.Security.Restricted = i == 7      // after a tamper alert
			d.Inventory.Security.BootIntegrity = map[bool]koshin.BootIntegrity{true: koshin.BootUnverified, false: koshin.BootVerified}[i >= 6]
			if i == 5 {
				d.PollInterval = 6 * time.Hour
			}
		}))
	}
	f.device("B-0", "board-b", func(d *koshin.Device) { d.Inventory.Settings.UpdatesEnabled = false })
	never := storetest.NewDevice(t, "N-0", "board-a") // enrolled, never reported
	must(t, f.st.CreateDevice(f.ctx, never))
	retired := f.device("R-0", "board-a", nil)
	_, err := f.st.DecommissionDevice(f.ctx, retired.ID, f.clock.Now())
	must(t, err)
	f.event(a[0], koshin.EventRejected, "") // before the window
	must(t, f.st.AppendAudit(f.ctx, &koshin.AuditEntry{Principal: "operator:old", Action: "operator.password", Result: koshin.AuditOK}))

	// The window: the last 30 days.
	f.at(t0.AddDate(0, 0, -10))
	sec := storetest.NewRelease("rootfs-2.img", 2, "board-a")
	sec.Security, sec.Advisories = true, []string{"KSA-2026-002", "CVE-2026-2222"}
	must(t, f.st.CreateRelease(f.ctx, sec))
	imported := f.clock.Now()
	for i, h := range []int{2, 5, 9, 30} { // a[0..3] commit rootfs-2 after h hours
		f.at(imported.Add(time.Duration(h) * time.Hour))
		f.event(a[i], koshin.EventCommitted, "rootfs-2.img")
		a[i].Inventory.Components[0] = koshin.Component{Name: "rootfs", Version: "1.2", ReleaseCounter: 2, Target: "rootfs-2.img"}
		f.report(a[i])
	}
	f.at(t0.Add(-time.Hour))
	f.event(a[1], koshin.EventRejected, "rootfs-2.img")
	f.event(a[1], koshin.EventRejected, "rootfs-2.img")
	f.event(a[2], koshin.EventRejected, "rootfs-2.img")
	f.event(a[4], koshin.EventRolledBack, "rootfs-2.img")
	f.event(a[5], koshin.EventLockout, "")
	f.event(a[5], koshin.EventLockout, "")
	f.event(a[7], koshin.EventTamper, "")
	f.event(a[6], koshin.EventFactoryReset, "")
	for _, e := range []*koshin.AuditEntry{
		{Principal: "operator:alice", Action: "operator.password", Result: koshin.AuditOK},
		{Principal: "operator:bob", Action: "operator.password", Result: koshin.AuditFailed},
	} {
		must(t, f.st.AppendAudit(f.ctx, e))
	}
	f.at(t0)

	got, err := f.fleet.Facts(f.ctx)
	must(t, err)
	want := &compliance.FleetFacts{
		ObservedAt: t0, WindowDays: 30, Devices: 9, DistinctIdentities: 9,
		UpdatesEnabled: 8, AutomaticUpdates: 6, UpdateNotifications: 5,
		PollInterval:        compliance.Distribution{Samples: 9, Min: 3600, P50: 3600, P90: 21600, Max: 21600},
		PollJitter:          compliance.Distribution{Samples: 9, Min: 600, P50: 600, P90: 600, Max: 600},
		SignatureRejections: 3, RejectingDevices: 2, Rollbacks: 1, Lockouts: 2, TamperAlerts: 1, RestrictedDevices: 1,
		BootIntegrity: compliance.BootIntegrity{Verified: 7, Unverified: 2}, FactoryResets: 1, CredentialChanges: 1,
		PatchLatency: []compliance.AdvisoryLatency{{
			// a[0..3] committed; a[4..7] still run counter 1: 8 affected.
			Advisory: "KSA-2026-002", Release: "rootfs-2.img", ReleasedAt: imported, AffectedDevices: 8,
			HoursTo50: ptr(30.0), HoursTo90: nil,
		}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("facts (-want +got):\n%s", d)
	}

	// Once a detector has run, its alerts count.
	for _, e := range []*koshin.AuditEntry{
		{Principal: anomaly.Principal, Action: anomaly.ActionStart, Target: "telemetry", Result: koshin.AuditOK},
		{Principal: anomaly.Principal, Action: anomaly.ActionRaise, Target: "lockouts fleet", Result: koshin.AuditOK,
			Detail: "count=12 threshold=10 baseline=0.00 window=15m0s"},
	} {
		must(t, f.st.AppendAudit(f.ctx, e))
	}
	got, err = f.fleet.Facts(f.ctx)
	must(t, err)
	if got.AnomalyAlerts == nil || *got.AnomalyAlerts != 1 {
		t.Errorf("anomaly alerts = %v", got.AnomalyAlerts)
	}
}

// The report follows the fleet: when users switch automatic updates off,
// EN 303 645 5.3-6 is no longer met and the report flags the contradiction
// with the profile; when they switch them on again, it is met again.
func TestReportFollowsFleet(t *testing.T) {
	f := newFixture(t)
	var devs []*koshin.Device
	for i := range 5 {
		devs = append(devs, f.device(fmt.Sprintf("A-%d", i), "board-a", nil))
	}
	p := loadProfile(t)
	row := func() compliance.Row {
		t.Helper()
		m, err := compliance.Report(f.ctx, compliance.EN303645, p, f.fleet, nil, compliance.Options{Now: f.clock.Now()})
		must(t, err)
		r, ok := m.Row("5.3-6")
		if !ok {
			t.Fatal("no row 5.3-6")
		}
		return r
	}
	if r := row(); r.Support != compliance.SupportYes || r.Flagged {
		t.Fatalf("5.3-6 with automatic updates on: %s %s", r.Support, r.Detail)
	}
	set := func(on bool) {
		for _, d := range devs {
			d.Inventory.Settings.Automatic = on
			f.report(d)
		}
	}
	set(false)
	if r := row(); r.Support != compliance.SupportNo || !r.Flagged {
		t.Fatalf("5.3-6 with automatic updates off everywhere: %s %s", r.Support, r.Detail)
	}
	set(true)
	if r := row(); r.Support != compliance.SupportYes {
		t.Fatalf("5.3-6 after switching back on: %s %s", r.Support, r.Detail)
	}
}

func loadProfile(t *testing.T) *compliance.Profile {
	fh, err := os.Open("../compliance/testdata/profile.yaml")
	must(t, err)
	defer fh.Close()
	p, err := compliance.LoadProfile(fh)
	must(t, err)
	return p
}
