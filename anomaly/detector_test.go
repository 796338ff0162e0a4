package anomaly_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/anomaly"
	"github.com/koshin-ota/koshin/rollout"
	"github.com/koshin-ota/koshin/sqlite"
	"github.com/koshin-ota/koshin/storetest"
)

var t0 = time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)

// fixture is a store with a small fleet, a clock and a detector.
type fixture struct {
	t       *testing.T
	ctx     context.Context
	clock   *storetest.Clock
	st      *sqlite.DB
	a, b    []*koshin.Device // board-a in group plant-1; board-b without a group
	d       *anomaly.Detector
	notes   *notes
	reg     *prometheus.Registry
	events  int
	refused uint64
}

func newFixture(t *testing.T) *fixture {
	clock := storetest.NewClock(t0)
	st := sqlite.NewDB(filepath.Join(t.TempDir(), "koshin.db"))
	st.Now = clock.Now
	f := &fixture{t: t, ctx: t.Context(), clock: clock, st: st, notes: &notes{}}
	must(t, st.Open(f.ctx))
	t.Cleanup(func() { st.Close() })
	for i := range 10 {
		a := storetest.NewDevice(t, fmt.Sprintf("A-%d", i), "board-a")
		a.Group = "plant-1"
		b := storetest.NewDevice(t, fmt.Sprintf("B-%d", i), "board-b")
		must(t, st.CreateDevice(f.ctx, a))
		must(t, st.CreateDevice(f.ctx, b))
		f.a, f.b = append(f.a, a), append(f.b, b)
	}
	r := storetest.NewRelease("rootfs-1.img", 1, "board-a", "board-b")
	must(t, st.CreateRelease(f.ctx, r))
	f.detector(anomaly.Config{})
	return f
}

// detector replaces the fixture's detector, as a restart would.
func (f *fixture) detector(c anomaly.Config) {
	f.reg = prometheus.NewRegistry()
	f.d = &anomaly.Detector{Store: f.st, Notifier: f.notes, Registerer: f.reg, Config: c, Now: f.clock.Now,
		Throttled: func() uint64 { return f.refused }}
	must(f.t, f.d.Init())
}

// event records an event of type typ from dev at the current time.
func (f *fixture) event(dev *koshin.Device, typ koshin.EventType) {
	f.t.Helper()
	f.events++
	e := &koshin.Event{DeviceID: dev.ID, EventID: fmt.Sprintf("e%d", f.events), Type: typ}
	_, err := f.st.RecordEvent(f.ctx, e, f.clock.Now())
	must(f.t, err)
}

// tick advances the clock by one minute and ticks.
func (f *fixture) tick() {
	f.t.Helper()
	f.clock.Advance(time.Minute)
	must(f.t, f.d.Tick(f.ctx))
}

func (f *fixture) ticks(n int) {
	f.t.Helper()
	for range n {
		f.tick()
	}
}

// notes is a Notifier that remembers.
type notes struct {
	mu  sync.Mutex
	all []rollout.Notification
}

func (n *notes) Notify(_ context.Context, nt rollout.Notification) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.all = append(n.all, nt)
	return nil
}

// of lists the reasons of notifications of one kind.
func (n *notes) of(kind rollout.Kind) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, nt := range n.all {
		if nt.Kind == kind {
			out = append(out, nt.Reason)
		}
	}
	return out
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// scopes returns the scopes of the alerts, sorted.
func scopes(alerts []anomaly.Alert, sig anomaly.Signal) []string {
	var out []string
	for _, a := range alerts {
		if a.Signal == sig {
			out = append(out, a.Scope.String())
		}
	}
	slices.Sort(out)
	return out
}

func (f *fixture) alerts() []anomaly.Alert {
	f.t.Helper()
	list, err := anomaly.ListAlerts(f.ctx, f.st, t0.Add(-time.Hour), 100)
	must(f.t, err)
	return list
}

// metric reads a counter or gauge with the given labels.
func (f *fixture) metric(name string, labels map[string]string) float64 {
	f.t.Helper()
	mfs, err := f.reg.Gather()
	must(f.t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// A burst of refused updates from one hardware model raises exactly one
// alert per scope it touches, however many ticks see it within the
// window; the other model stays quiet. When the burst leaves the window,
// every alert clears.
func TestSpikeRaisesOneAlertPerWindowAndClears(t *testing.T) {
	f := newFixture(t)
	f.ticks(30) // a quiet half hour
	for i := range 12 {
		f.event(f.a[i%len(f.a)], koshin.EventRejected)
	}
	f.event(f.b[0], koshin.EventRejected)
	f.ticks(10) // the burst stays in the window for all of them

	want := []string{"fleet", "group:plant-1", "hardware:board-a"}
	if got := scopes(f.alerts(), anomaly.SignalRejected); !slices.Equal(got, want) {
		t.Fatalf("alerts %v, want %v", got, want)
	}
	if got := f.notes.of(anomaly.KindAlert); len(got) != 3 || !strings.Contains(got[0], "rejected-updates in fleet: 13 in 15m0s") {
		t.Fatalf("notifications %q", got)
	}
	if n := f.metric("koshin_anomaly_alerts_total", map[string]string{"signal": "rejected-updates", "scope": "hardware"}); n != 1 {
		t.Errorf("alerts_total{hardware} = %v", n)
	}
	if n := f.metric("koshin_anomaly_alerts_active", map[string]string{"signal": "rejected-updates"}); n != 3 {
		t.Errorf("alerts_active = %v", n)
	}
	if n := f.metric("koshin_anomaly_window_count", map[string]string{"signal": "rejected-updates"}); n != 13 {
		t.Errorf("window_count = %v", n)
	}

	f.ticks(6) // 16 minutes after the burst: it has left the window
	for _, a := range f.alerts() {
		if a.Active() {
			t.Errorf("%s in %s still active", a.Signal, a.Scope)
		}
	}
	if got := f.notes.of(anomaly.KindCleared); len(got) != 3 {
		t.Fatalf("cleared notifications %q", got)
	}
	if n := f.metric("koshin_anomaly_alerts_active", map[string]string{"signal": "rejected-updates"}); n != 0 {
		t.Errorf("alerts_active after recovery = %v", n)
	}
	if n, running, err := anomaly.CountAlerts(f.ctx, f.st, t0); err != nil || !running || n != 3 {
		t.Errorf("CountAlerts = %d, %v, %v", n, running, err)
	}
}

// A busy but steady fleet raises nothing: lockouts arrive at 20 per
// window, over the floor, all day long. The detector starts after a day of
// history and learns the baseline from it.
func TestSteadyStateRaisesNothing(t *testing.T) {
	f := newFixture(t)
	minute := 0
	every := func(minutes int) {
		for range minutes {
			if minute++; minute%3 == 0 { // 5 per 15 minutes on each of 4 devices
				for _, d := range []*koshin.Device{f.a[0], f.a[1], f.b[0], f.b[1]} {
					f.event(d, koshin.EventLockout)
				}
			}
			f.clock.Advance(time.Minute)
		}
	}
	every(25 * 60) // history before the detector starts
	for range 3 * 60 {
		every(1)
		must(t, f.d.Tick(f.ctx))
	}
	if got := f.alerts(); len(got) != 0 {
		t.Fatalf("steady state raised %+v", got)
	}
	if n := f.metric("koshin_anomaly_window_count", map[string]string{"signal": "lockouts"}); n < 19 || n > 21 {
		t.Errorf("window_count = %v, want about 20", n)
	}
	// Against that baseline a tripling alerts.
	for range 3 {
		every(1)
	}
	for range 60 {
		f.event(f.a[2], koshin.EventLockout)
	}
	f.tick()
	if got := scopes(f.alerts(), anomaly.SignalLockouts); !slices.Contains(got, "fleet") || !slices.Contains(got, "hardware:board-a") {
		t.Fatalf("tripled lockouts raised %v", got)
	}
}

// Devices reporting a version no release explains raise an alert; a device
// that keeps reporting the same unknown version counts once.
func TestUnknownVersions(t *testing.T) {
	f := newFixture(t)
	report := func(d *koshin.Device, counter uint64, failures uint32) {
		inv := d.Inventory
		inv.Components = []koshin.Component{{Name: "rootfs", Version: fmt.Sprintf("9.%d", counter), ReleaseCounter: counter}}
		inv.Security.FailedVerifications = failures
		_, err := f.st.RecordDeviceReport(f.ctx, d.ID, inv, f.clock.Now())
		must(t, err)
	}
	for _, d := range f.b {
		report(d, 1, 0) // release 1 exists
	}
	for i := range 4 {
		report(f.b[0], 99, uint32(i)) // one device, one unknown version, four reports
	}
	f.ticks(2)
	if got := f.alerts(); len(got) != 0 {
		t.Fatalf("one device raised %+v", got)
	}
	for _, d := range f.b[1:6] {
		report(d, 99, 0)
	}
	f.tick()
	if got := scopes(f.alerts(), anomaly.SignalUnknownVersions); !slices.Equal(got, []string{"fleet", "hardware:board-b"}) {
		t.Fatalf("unknown versions raised %v", got)
	}
}

// A flood of refused requests is a retry storm for the whole fleet.
func TestRetryStorm(t *testing.T) {
	f := newFixture(t)
	f.tick()
	f.refused += 150
	f.tick()
	if got := f.alerts(); len(got) != 0 {
		t.Fatalf("150 refusals raised %+v", got)
	}
	f.refused += 100
	f.tick()
	if got := scopes(f.alerts(), anomaly.SignalRetryStorm); !slices.Equal(got, []string{"fleet"}) {
		t.Fatalf("retry storm raised %v", got)
	}
}

// A detector that starts again (a restart, or another replica taking over)
// keeps the active alerts, does not raise them again, and clears them.
func TestRestartKeepsAlerts(t *testing.T) {
	f := newFixture(t)
	for range 8 {
		f.event(f.b[1], koshin.EventRejected)
	}
	f.tick()
	if got := scopes(f.alerts(), anomaly.SignalRejected); len(got) != 2 {
		t.Fatalf("alerts %v", got)
	}
	f.detector(anomaly.Config{})
	f.ticks(5)
	if got := f.notes.of(anomaly.KindAlert); len(got) != 2 {
		t.Fatalf("the restarted detector raised again: %q", got)
	}
	f.ticks(15)
	if got := f.notes.of(anomaly.KindCleared); len(got) != 2 {
		t.Fatalf("the restarted detector did not clear: %q", got)
	}
	if n := f.metric("koshin_anomaly_alerts_active", map[string]string{"signal": "rejected-updates"}); n != 0 {
		t.Errorf("alerts_active = %v", n)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []anomaly.Config{
		{Bucket: time.Millisecond},
		{Window: 90 * time.Second},
		{Baseline: 20 * time.Minute},
		{Bucket: time.Second, Baseline: 48 * time.Hour},
		{Thresholds: map[anomaly.Signal]anomaly.Threshold{anomaly.SignalLockouts: {Factor: 0.5, Floor: 1}}},
		{Thresholds: map[anomaly.Signal]anomaly.Threshold{anomaly.SignalRejected: {Factor: 2, Floor: 0}}},
	}
	for i, c := range bad {
		if err := c.WithDefaults().Validate(); err == nil {
			t.Errorf("config %d accepted: %+v", i, c)
		}
	}
	if err := (anomaly.Config{}).WithDefaults().Validate(); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
}
