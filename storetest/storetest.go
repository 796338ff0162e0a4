// Package storetest is the conformance suite every koshin.Store
// implementation runs: one body of tests for the embedded SQLite store and
// the PostgreSQL store, so that the two cannot drift apart. Each test opens
// a fresh store through the Backend and checks the behaviour documented on
// the koshin store interfaces: uniqueness of device keys and serials,
// single-use expiring enrollment credentials, at most one active
// assignment per device even under concurrent writers, idempotent events,
// the tamper-evident audit chain, login lockout, pagination and the
// rollout lifecycle.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Backend{Open: openTestDB, ...})
//	}
package storetest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

// Backend opens stores of one implementation.
type Backend struct {
	// Open returns a new, empty, migrated store whose record-keeping clock
	// is now. It registers its own cleanup.
	Open func(t *testing.T, now func() time.Time) koshin.Store
	// OpenPeer opens a second handle on the database behind s, as another
	// server replica would. Nil skips the multi-handle tests.
	OpenPeer func(t *testing.T, s koshin.Store, now func() time.Time) koshin.Store
	// TamperAudit rewrites the detail of audit entry seq directly in the
	// database, bypassing the store and any append-only guard, as an
	// attacker with database access would. Nil skips the tamper test.
	TamperAudit func(t *testing.T, s koshin.Store, seq int64, detail string)
}

// Run runs the whole suite.
func Run(t *testing.T, b Backend) {
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"Devices", testDevices},
		{"DeviceFilters", testDeviceFilters},
		{"DevicePagination", testDevicePagination},
		{"DeviceReports", testDeviceReports},
		{"PreAuthorizations", testPreAuthorizations},
		{"EnrollmentTokens", testEnrollmentTokens},
		{"EnrollmentTokenRace", testEnrollmentTokenRace},
		{"Releases", testReleases},
		{"RolloutLifecycle", testRolloutLifecycle},
		{"RolloutPlan", testRolloutPlan},
		{"OneActiveAssignment", testOneActiveAssignment},
		{"AssignNextRace", testAssignNextRace},
		{"HaltCancelsPending", testHaltCancelsPending},
		{"RevokeHaltsRollouts", testRevokeHaltsRollouts},
		{"Approval", testApproval},
		{"SilentDevices", testSilentDevices},
		{"PhaseStats", testPhaseStats},
		{"Events", testEvents},
		{"EventIdempotency", testEventIdempotency},
		{"Decommission", testDecommission},
		{"Operators", testOperators},
		{"Lockout", testLockout},
		{"TOTPState", testTOTPState},
		{"Settings", testSettings},
		{"APITokens", testAPITokens},
		{"Audit", testAudit},
		{"AuditTamper", testAuditTamper},
		{"Scenario", testScenario},
		{"Populate", func(t *testing.T, e *env) { Populate(t, e.s, e.clock) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := NewClock(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
			e := &env{b: b, clock: clock, ctx: context.Background()}
			e.s = b.Open(t, clock.Now)
			tt.fn(t, e)
		})
	}
}

// env is one test's store, clock and fixture counters.
type env struct {
	b     Backend
	s     koshin.Store
	clock *Clock
	ctx   context.Context
}

// Clock is a settable clock for stores and rules under test.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var keySeq atomic.Uint64

// NewKey returns a fresh PKIX-encoded Ed25519 public key, deterministic per
// process so failures reproduce.
func NewKey(tb testing.TB) []byte {
	tb.Helper()
	var seed [32]byte
	binary.BigEndian.PutUint64(seed[:], keySeq.Add(1))
	seed = sha256.Sum256(seed[:])
	priv := ed25519.NewKeyFromSeed(seed[:])
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

// NewDevice returns a valid, not yet stored, active device.
func NewDevice(tb testing.TB, serial, hw string) *koshin.Device {
	key := NewKey(tb)
	return &koshin.Device{
		ID: koshin.DeviceID(key), Serial: serial, HardwareID: hw, PublicKey: key,
		Status: koshin.DeviceActive, CertSerial: "01",
		Inventory: koshin.Inventory{
			Components: []koshin.Component{{Name: "rootfs", Version: "1.0", ReleaseCounter: 1}},
			Settings:   koshin.AgentSettings{UpdatesEnabled: true, Automatic: true, Notifications: true},
			Security:   koshin.SecurityState{BootIntegrity: koshin.BootVerified},
		},
	}
}

// createDevice stores a new device and returns it.
func (e *env) createDevice(t *testing.T, serial, hw string, mutate ...func(*koshin.Device)) *koshin.Device {
	t.Helper()
	d := NewDevice(t, serial, hw)
	for _, m := range mutate {
		m(d)
	}
	must(t, e.s.CreateDevice(e.ctx, d))
	return d
}

// fleet creates n devices of hardware hw named prefix-0000… .
func (e *env) fleet(t *testing.T, prefix, hw string, n int, mutate ...func(int, *koshin.Device)) []*koshin.Device {
	t.Helper()
	out := make([]*koshin.Device, n)
	for i := range n {
		out[i] = e.createDevice(t, fmt.Sprintf("%s-%04d", prefix, i), hw, func(d *koshin.Device) {
			for _, m := range mutate {
				m(i, d)
			}
		})
	}
	return out
}

// NewRelease returns a valid release for hardware IDs hws.
func NewRelease(name string, counter uint64, hws ...string) *koshin.Release {
	sum := sha256.Sum256([]byte(name))
	return &koshin.Release{
		Name: name, Length: 1 << 20, Hashes: map[string]string{"sha256": fmt.Sprintf("%x", sum)},
		HardwareIDs: hws, Component: "rootfs", ReleaseCounter: counter, Version: fmt.Sprintf("1.%d", counter),
		Channel: koshin.ChannelRelease, Advisories: []string{"KOSHIN-2026-0001"}, SupportEnd: "2030-12-31",
	}
}

func (e *env) createRelease(t *testing.T, name string, hws ...string) *koshin.Release {
	t.Helper()
	r := NewRelease(name, 2, hws...)
	must(t, e.s.CreateRelease(e.ctx, r))
	return r
}

// NewRollout returns a valid draft for release with the given phases.
func NewRollout(release string, phases ...koshin.Phase) *koshin.Rollout {
	return &koshin.Rollout{
		Name: "test", ReleaseName: release, Selector: koshin.Selector{All: true}, Phases: phases,
		Threshold: koshin.Threshold{MaxFailures: 3, MaxFailurePercent: 50}, SilenceTimeout: time.Hour,
		Mode: koshin.ModeAutomatic, CreatedBy: "alice", Seed: 7,
	}
}

// startRollout creates and starts a rollout.
func (e *env) startRollout(t *testing.T, r *koshin.Rollout) *koshin.Rollout {
	t.Helper()
	must(t, e.s.CreateRollout(e.ctx, r))
	started, err := e.s.StartRollout(e.ctx, r.ID, e.clock.Now())
	must(t, err)
	return started
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("unexpected error: %v", err)
	}
}

func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := koshin.ErrorCode(err); got != code {
		tb.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}

func equalTime(tb testing.TB, what string, got, want time.Time) {
	tb.Helper()
	if !got.Equal(want) {
		tb.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func intp(i int) *int { return &i }
