package rollout_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/rollout"
	"github.com/koshin-ota/koshin/sqlite"
)

var quiet = slog.New(slog.DiscardHandler)

// t0 is a Monday at midnight UTC.
var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

const (
	releaseName = "board/fw-2.0.0.img"
	operator    = "operator:alice"
)

// clock is a fake clock shared by the store, the service and the engine.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// recorder is a Notifier that keeps what it is told.
type recorder struct {
	mu    sync.Mutex
	notes []rollout.Notification
}

func (r *recorder) Notify(_ context.Context, n rollout.Notification) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, n)
	return nil
}

func (r *recorder) kinds() map[rollout.Kind]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[rollout.Kind]int{}
	for _, n := range r.notes {
		out[n.Kind]++
	}
	return out
}

// fixture is a fleet on a real SQLite store with a fake clock.
type fixture struct {
	t       *testing.T
	ctx     context.Context
	db      *sqlite.DB
	clock   *clock
	notes   *recorder
	svc     *rollout.Service
	eng     *rollout.Engine
	devices []*koshin.Device
	events  int
}

// newFixture enrolls n devices: hardware board-a or board-b (every fourth),
// tag region=eu or region=us (alternating), group plant-1 (first half) or
// plant-2, updates switched on.
func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: t.Context(), clock: &clock{t: t0}, notes: &recorder{}}
	f.db = sqlite.NewDB(filepath.Join(t.TempDir(), "koshin.db"))
	f.db.Now = f.clock.Now
	if err := f.db.Open(f.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.db.Close() })
	f.svc = &rollout.Service{Store: f.db, Notifier: f.notes, Now: f.clock.Now, Seed: func() int64 { return 42 }, Log: quiet}
	f.eng = f.engine()
	f.mustRelease()
	for i := range n {
		f.devices = append(f.devices, f.mustDevice(i, true))
	}
	return f
}

func (f *fixture) engine() *rollout.Engine {
	return &rollout.Engine{Store: f.db, Notifier: f.notes, Now: f.clock.Now, Log: quiet}
}

func (f *fixture) mustRelease() {
	f.t.Helper()
	sum := sha256.Sum256([]byte(releaseName))
	rel := &koshin.Release{
		Name: releaseName, Length: 1 << 20, Hashes: map[string]string{"sha256": fmt.Sprintf("%x", sum)},
		HardwareIDs: []string{"board-a", "board-b"}, Component: "rootfs", ReleaseCounter: 2,
		Version: "2.0.0", Channel: koshin.ChannelRelease,
	}
	if err := f.db.CreateRelease(f.ctx, rel); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) mustDevice(i int, updates bool) *koshin.Device {
	f.t.Helper()
	pub := sha256.Sum256(fmt.Appendf(nil, "device-%d", i))
	d := &koshin.Device{
		ID: koshin.DeviceID(pub[:]), Serial: fmt.Sprintf("SN-%04d", i), HardwareID: "board-a",
		PublicKey: pub[:], Group: "plant-1", Tags: []string{"region=eu"}, Status: koshin.DeviceActive,
		Inventory: koshin.Inventory{Settings: koshin.AgentSettings{UpdatesEnabled: updates, Automatic: true}},
	}
	if i%4 == 3 {
		d.HardwareID = "board-b"
	}
	if i%2 == 1 {
		d.Tags = []string{"region=us"}
	}
	if i >= 50 {
		d.Group = "plant-2"
	}
	if err := f.db.CreateDevice(f.ctx, d); err != nil {
		f.t.Fatal(err)
	}
	return d
}

// spec is a three-phase rollout over the whole fleet: 10%, 50%, 100%, an
// hour's soak after each, halting at 3 failures.
func spec() koshin.Rollout {
	return koshin.Rollout{
		Name: "fw 2.0.0", ReleaseName: releaseName, Selector: koshin.Selector{All: true},
		Phases: []koshin.Phase{
			{Percent: 10, Soak: time.Hour}, {Percent: 50, Soak: time.Hour}, {Percent: 100, Soak: time.Hour},
		},
		Threshold: koshin.Threshold{MaxFailures: 3}, SilenceTimeout: 6 * time.Hour,
		Mode: koshin.ModeAutomatic, StratifyTags: []string{"region=eu", "region=us"},
	}
}

// start creates and starts a rollout of s.
func (f *fixture) start(s koshin.Rollout) int64 {
	f.t.Helper()
	r, _, err := f.svc.Create(f.ctx, operator, s)
	if err != nil {
		f.t.Fatalf("Create: %v", err)
	}
	if _, err := f.svc.Start(f.ctx, operator, r.ID); err != nil {
		f.t.Fatalf("Start: %v", err)
	}
	return r.ID
}

func (f *fixture) tick() {
	f.t.Helper()
	if err := f.eng.Tick(f.ctx); err != nil {
		f.t.Fatalf("Tick: %v", err)
	}
}

func (f *fixture) rollout(id int64) *koshin.Rollout {
	f.t.Helper()
	r, err := f.db.FindRolloutByID(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) stats(id int64, phase int) koshin.PhaseStats {
	f.t.Helper()
	s, err := f.db.FindPhaseStats(f.ctx, id, phase, f.clock.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	return *s
}

// assignments lists the rollout's assignments, optionally of one phase
// and state.
func (f *fixture) assignments(id int64, phase int, state koshin.AssignmentState) []*koshin.Assignment {
	f.t.Helper()
	filter := koshin.AssignmentFilter{RolloutID: id, State: state, Page: koshin.SeqPage{Limit: koshin.MaxLimit}}
	if phase >= 0 {
		filter.Phase = &phase
	}
	as, err := f.db.FindAssignments(f.ctx, filter)
	if err != nil {
		f.t.Fatal(err)
	}
	return as
}

func deviceIDs(as []*koshin.Assignment) []string {
	var ids []string
	for _, a := range as {
		ids = append(ids, a.DeviceID)
	}
	slices.Sort(ids)
	return ids
}

// checkIn asks for the device's instruction.
func (f *fixture) checkIn(deviceID string) *rollout.Offer {
	f.t.Helper()
	o, err := f.svc.Instruction(f.ctx, deviceID, f.clock.Now())
	if err != nil {
		f.t.Fatalf("Instruction(%s): %v", deviceID[:8], err)
	}
	return o
}

// event builds a device event with a fresh ID.
func (f *fixture) event(t koshin.EventType) koshin.Event {
	f.events++
	return koshin.Event{EventID: fmt.Sprintf("ev-%d", f.events), Type: t, ReleaseName: releaseName, Reason: "test"}
}

// report records events of the given types for one device.
func (f *fixture) report(deviceID string, types ...koshin.EventType) {
	f.t.Helper()
	var evs []koshin.Event
	for _, t := range types {
		evs = append(evs, f.event(t))
	}
	if _, err := f.svc.RecordEvents(f.ctx, deviceID, evs); err != nil {
		f.t.Fatalf("RecordEvents: %v", err)
	}
}

var (
	success  = []koshin.EventType{koshin.EventDownloading, koshin.EventInstalling, koshin.EventRebooting, koshin.EventCommitted}
	failure  = []koshin.EventType{koshin.EventDownloading, koshin.EventInstalling, koshin.EventFailed}
	rollback = []koshin.EventType{koshin.EventDownloading, koshin.EventInstalling, koshin.EventRebooting, koshin.EventRolledBack}
)

// install checks every device of as in and, when offered the release,
// reports outcome. It returns how many were offered.
func (f *fixture) install(as []*koshin.Assignment, outcome []koshin.EventType) int {
	f.t.Helper()
	offered := 0
	for _, a := range as {
		if o := f.checkIn(a.DeviceID); o != nil {
			offered++
			f.report(a.DeviceID, outcome...)
		}
	}
	return offered
}

// auditCount counts audit entries with action.
func (f *fixture) auditCount(action string) int {
	f.t.Helper()
	n := 0
	page := koshin.SeqPage{Limit: koshin.MaxLimit}
	for {
		es, err := f.db.FindAuditEntries(f.ctx, koshin.AuditFilter{Action: action, Page: page})
		if err != nil {
			f.t.Fatal(err)
		}
		n += len(es)
		if len(es) < page.Limit {
			return n
		}
		page.Cursor = es[len(es)-1].Seq
	}
}

// wantCode fails unless err carries code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := koshin.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}
