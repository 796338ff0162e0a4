package agent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/agenttest"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/koshin-ota/koshin/trust/verify"
)

// guarded is a simulated device whose integrity checks the test controls:
// the boot-integrity hook's verdict, the slot check, and a trusted-metadata
// check that opens the real trust core's directory.
type guarded struct {
	*agenttest.Rig
	mu      sync.Mutex
	verdict string
	alerts  []agent.Finding
	slept   time.Duration
	// restore undoes a change the rig cannot boot with.
	restore func()
}

func newGuarded(t *testing.T, seed uint64) *guarded {
	t.Helper()
	g := &guarded{Rig: agenttest.NewRig(t, seed), verdict: "verified"}
	g.Tweak = func(c *agent.Config) {
		c.BootIntegrity = g.bootVerdict
		f := c.Factory[agenttest.RigComponent]
		f.Length = int64(len(g.OldImage))
		c.Factory[agenttest.RigComponent] = f
		c.Integrity = agent.IntegrityConfig{SlotCheck: true, Trusted: g.trusted, Key: []byte("device-local key"),
			OnAlert: func(f agent.Finding) { g.mu.Lock(); g.alerts = append(g.alerts, f); g.mu.Unlock() },
			Sleep: func(_ context.Context, d time.Duration) error {
				g.mu.Lock()
				g.slept += d
				g.mu.Unlock()
				g.Clock.Advance(d)
				return nil
			}}
	}
	return g
}

func (g *guarded) bootVerdict() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.verdict
}

func (g *guarded) setVerdict(v string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.verdict = v
}

// trusted is what koshin-agent checks: the trusted roots open and verify.
func (g *guarded) trusted() error {
	_, err := verify.New(verify.Config{Device: g.Dev, Dir: g.Device.MetaDir, ImageURL: g.Img.MetadataURL(),
		DirectorURL: g.Dir.MetadataURL(), TargetsURL: g.Img.TargetsURL(), Fetcher: trusttest.Mux{g.Img, g.Dir}, Now: g.Clock.Now})
	return err
}

func (g *guarded) poll(t *testing.T, e *agent.Engine) error {
	t.Helper()
	_, err := e.Poll(context.Background())
	if err != nil && !errors.Is(err, agent.ErrReboot) {
		t.Fatalf("poll: %v", err)
	}
	return err
}

// lastReport is the security state of the last check-in.
func (g *guarded) lastReport(t *testing.T) deviceapi.Security {
	t.Helper()
	reps := g.Server.Reports()
	if len(reps) == 0 {
		t.Fatal("no check-in reached the server")
	}
	return reps[len(reps)-1].Security
}

func (g *guarded) tampers() []deviceapi.Event {
	var out []deviceapi.Event
	for _, ev := range g.Server.Received() {
		if ev.Type == deviceapi.EventTamper {
			out = append(out, ev)
		}
	}
	return out
}

func (g *guarded) slotPath(name string) string {
	return filepath.Join(g.Device.Slots.Dir, "slot-"+name+".img")
}

// flip changes one byte of a slot behind the agent's back.
func (g *guarded) flip(t *testing.T, slot string, off int64) {
	t.Helper()
	b, err := os.ReadFile(g.slotPath(slot))
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x40
	if err := os.WriteFile(g.slotPath(slot), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func hasReason(fs []agent.Finding, reason string) bool {
	for _, f := range fs {
		if f.Reason == reason {
			return true
		}
	}
	return false
}

// Every kind of unauthorised change raises the alert: the engine restricts
// itself, its user hears of it, the server receives a tamper-detected
// report with the reason and sees Restricted in every check-in report, an
// offline install is refused, and a restart keeps all of it even when the
// cause has gone.
func TestUnauthorisedChangeRaisesAlert(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reason string
		// tamper makes the change and runs whatever detects it.
		tamper func(t *testing.T, g *guarded, e *agent.Engine) *agent.Engine
		// undo removes the cause where it can be removed.
		undo func(g *guarded)
	}{
		{"boot integrity failed", agent.TamperBootIntegrity, func(t *testing.T, g *guarded, e *agent.Engine) *agent.Engine {
			g.setVerdict("failed")
			g.poll(t, e)
			return e
		}, func(g *guarded) { g.setVerdict("verified") }},
		{"factory slot content changed", agent.TamperSlotContent, func(t *testing.T, g *guarded, e *agent.Engine) *agent.Engine {
			g.flip(t, "A", 1000)
			if err := e.CheckSlot(context.Background()); err != nil {
				t.Fatal(err)
			}
			return e
		}, nil},
		{"trusted root replaced", agent.TamperTrustedMetadata, func(t *testing.T, g *guarded, e *agent.Engine) *agent.Engine {
			p := filepath.Join(g.Device.MetaDir, "image", "root.json")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			edited := strings.Replace(string(b), `"expires":"`, `"expires":"2`, 1)
			if err := os.WriteFile(p, []byte(edited), 0o600); err != nil {
				t.Fatal(err)
			}
			g.restore = func() { os.WriteFile(p, b, 0o600) }
			g.poll(t, e)
			return e
		}, func(g *guarded) { g.restore() }},
		{"anti-rollback counter edited", agent.TamperCounter, func(t *testing.T, g *guarded, e *agent.Engine) *agent.Engine {
			for _, name := range []string{"counter.0", "counter.1"} {
				p := filepath.Join(g.Device.State.Dir, name)
				if b, err := os.ReadFile(p); err == nil {
					os.WriteFile(p, []byte(strings.Replace(string(b), `"rootfs":1`, `"rootfs":0`, 1)), 0o600)
				}
			}
			e.Close()
			return g.Boot()
		}, nil},
		{"integrity record edited", agent.TamperRecord, func(t *testing.T, g *guarded, e *agent.Engine) *agent.Engine {
			// A commit-free device has no record yet; a check writes one.
			g.setVerdict("failed")
			g.poll(t, e)
			if err := e.ClearAlert(context.Background(), "test"); err != nil {
				t.Fatal(err)
			}
			g.setVerdict("verified")
			p := filepath.Join(g.Device.State.Dir, "integrity.json")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(p, []byte(strings.Replace(string(b), `"mac":"`, `"mac":"0`, 1)), 0o600)
			e.Close()
			return g.Boot()
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			g := newGuarded(t, 11)
			g.Server.Assign("") // nothing to install: the alert alone is under test
			e := g.Boot()
			cfg := g.Config()
			if err := e.CheckSlot(ctx); err != nil {
				t.Fatal(err)
			}
			g.poll(t, e)
			if e.Restricted() || g.lastReport(t).Restricted || len(g.tampers()) != 0 {
				t.Fatalf("restricted before any change: alert %v, events %v", e.Alert(), g.tampers())
			}

			e = tc.tamper(t, g, e)
			if !hasReason(e.Alert(), tc.reason) {
				t.Fatalf("alert %+v, want a finding %q", e.Alert(), tc.reason)
			}
			g.poll(t, e)
			if !g.lastReport(t).Restricted {
				t.Fatal("check-in report does not say restricted")
			}
			tampers := g.tampers()
			if len(tampers) == 0 || tampers[len(tampers)-1].Reason != tc.reason {
				t.Fatalf("server got tamper reports %+v, want one with reason %q", tampers, tc.reason)
			}
			g.mu.Lock()
			alerted := hasReason(g.alerts, tc.reason)
			g.mu.Unlock()
			if !alerted {
				t.Fatal("the user was not alerted (OnAlert)")
			}
			d, err := e.Details(ctx)
			if err != nil || !hasReason(d.Alert, tc.reason) {
				t.Fatalf("local status alert %+v, %v", d.Alert, err)
			}
			_, err = e.InstallOffline(ctx, agent.Offline{Director: []byte("{}"), Nonce: "n", Verifier: cfg.Verifier, Fetcher: cfg.Fetcher})
			if !errors.Is(err, agent.ErrRestricted) {
				t.Fatalf("offline install while restricted: %v, want ErrRestricted", err)
			}

			if tc.undo != nil {
				tc.undo(g)
			}
			e.Close()
			e = g.Boot()
			if !hasReason(e.Alert(), tc.reason) {
				t.Fatalf("after a restart the alert is %+v, want %q kept", e.Alert(), tc.reason)
			}
			before := len(g.tampers())
			g.poll(t, e)
			if !g.lastReport(t).Restricted {
				t.Fatal("check-in report after a restart does not say restricted")
			}
			if n := len(g.tampers()); n != before {
				t.Fatalf("the restart reported the alert again (%d tamper reports, had %d)", n, before)
			}
		})
	}
}

// A verified update committed while restricted ends the alert: it installs
// without the user's approval (the user's decisions are refused while
// restricted), the commit is reported with alert-cleared, the next report
// is no longer restricted, and a restart stays that way.
func TestCommittedUpdateClearsAlert(t *testing.T) {
	ctx := context.Background()
	g := newGuarded(t, 12)
	tweak := g.Tweak
	g.Tweak = func(c *agent.Config) {
		tweak(c)
		c.Approve = func(context.Context, agent.Target, deviceapi.Mode) bool { return false } // a user who never approves
	}
	e := g.Boot()
	g.setVerdict("failed")
	if !errors.Is(g.poll(t, e), agent.ErrReboot) {
		t.Fatal("the restricted device did not install the server's update")
	}
	if !e.Restricted() || g.Server.Count(deviceapi.EventTamper) != 1 {
		t.Fatalf("alert %+v, tamper reports %d", e.Alert(), g.Server.Count(deviceapi.EventTamper))
	}
	g.setVerdict("verified") // the new image boots verified
	e.Close()
	e = g.Boot() // trial boot: health check, commit
	if e.Restricted() {
		t.Fatalf("alert %+v after the commit", e.Alert())
	}
	g.poll(t, e)
	if g.lastReport(t).Restricted {
		t.Fatal("report after the commit still says restricted")
	}
	var cleared *deviceapi.Event
	for _, ev := range g.Server.Received() {
		if ev.Type == deviceapi.EventAlertCleared {
			cleared = &ev
		}
	}
	if cleared == nil || cleared.Reason != agent.ClearedByUpdate || cleared.Target != g.NewName {
		t.Fatalf("alert-cleared report %+v", cleared)
	}
	if g.Server.Count(deviceapi.EventCommitted) != 1 {
		t.Fatalf("server got %v", events(g.Server))
	}
	e.Close()
	if e = g.Boot(); e.Restricted() {
		t.Fatalf("alert %+v after a restart", e.Alert())
	}
	// The new slot's reference is what was committed to it.
	if err := e.CheckSlot(ctx); err != nil || e.Restricted() {
		t.Fatalf("slot check of the committed slot: %v, alert %+v", err, e.Alert())
	}
	g.flip(t, "B", int64(len(g.NewImage)-1))
	if err := e.CheckSlot(ctx); err != nil || !hasReason(e.Alert(), agent.TamperSlotContent) {
		t.Fatalf("slot check of the changed slot: %v, alert %+v", err, e.Alert())
	}
}

// An administrator clears the alert through ClearAlert; the clearing is
// reported with its detail. A cause that persists is detected again at the
// next check-in, and the slot a device was switched to behind the agent's
// back is recognised after every restart.
func TestClearAlert(t *testing.T) {
	ctx := context.Background()
	g := newGuarded(t, 13)
	e := g.Boot()
	if err := e.ClearAlert(ctx, "nothing"); !errors.Is(err, agent.ErrNoAlert) {
		t.Fatalf("clear without an alert: %v, want ErrNoAlert", err)
	}
	if !errors.Is(g.poll(t, e), agent.ErrReboot) {
		t.Fatal("no update")
	}
	e.Close()
	e = g.Boot() // commit B
	g.poll(t, e)

	// Someone points the bootloader back at A, the old image.
	env := g.Env()
	env.Slot = "A"
	if err := g.Device.Boot.Write(env); err != nil {
		t.Fatal(err)
	}
	e.Close()
	e = g.Boot()
	if !hasReason(e.Alert(), agent.TamperSlotSwitched) {
		t.Fatalf("alert %+v, want slot-switched", e.Alert())
	}
	if err := e.ClearAlert(ctx, "uid 0: examined; A is a known image"); err != nil {
		t.Fatal(err)
	}
	if e.Restricted() {
		t.Fatal("still restricted after clearing")
	}
	// Still booted from A: the next check finds the same change.
	g.poll(t, e)
	if !hasReason(e.Alert(), agent.TamperSlotSwitched) {
		t.Fatalf("alert %+v: a persisting cause must be detected again", e.Alert())
	}
	var cleared []deviceapi.Event
	for _, ev := range g.Server.Received() {
		if ev.Type == deviceapi.EventAlertCleared {
			cleared = append(cleared, ev)
		}
	}
	if len(cleared) != 1 || cleared[0].Reason != agent.ClearedByAdministrator || !strings.Contains(cleared[0].Detail, "examined") {
		t.Fatalf("alert-cleared reports %+v", cleared)
	}
	if g.Server.Count(deviceapi.EventTamper) != 2 {
		t.Fatalf("server got %v, want two tamper reports", events(g.Server))
	}
}

// The slot check reads at the configured rate, pausing through its own
// Sleep, and skips images above its size limit.
func TestSlotCheckRateAndLimit(t *testing.T) {
	ctx := context.Background()
	g := newGuarded(t, 14)
	tweak := g.Tweak
	g.Tweak = func(c *agent.Config) { tweak(c); c.Integrity.SlotCheckRate = 8 << 10 }
	e := g.Boot()
	if err := e.CheckSlot(ctx); err != nil || e.Restricted() {
		t.Fatalf("slot check: %v, alert %+v", err, e.Alert())
	}
	// 40 KiB at 8 KiB/s (the clock moves only while the check pauses).
	if want := 5 * time.Second; g.slept != want {
		t.Fatalf("paused %v in all, want %v", g.slept, want)
	}

	g.Tweak = func(c *agent.Config) { tweak(c); c.Integrity.SlotCheckMax = int64(len(g.OldImage)) - 1 }
	g.flip(t, "A", 0)
	e.Close()
	e = g.Boot()
	if err := e.CheckSlot(ctx); err != nil || e.Restricted() {
		t.Fatalf("slot check above its limit: %v, alert %+v", err, e.Alert())
	}
}

// A power cut anywhere while an alert is raised leaves the device either
// restricted with its report on the way to the server, or as it was: never
// restricted without a report, never reported twice.
func TestAlertSurvivesPowerCuts(t *testing.T) {
	ctx := context.Background()
	for n := 0; ; n++ {
		g := newGuarded(t, 15)
		g.Server.Assign("")
		e := g.Boot()
		g.setVerdict("failed")
		start := g.Device.Inj.Count()
		g.Device.Inj.CutAt(start + n)
		e.Poll(ctx)
		cut := g.Device.Inj.Cuts() > 0
		g.Device.Inj.CutAt(-1)
		g.setVerdict("verified") // the cause is gone after the reboot
		e.Close()
		e = g.Boot()
		if _, err := e.Poll(ctx); err != nil {
			t.Fatalf("cut %d: poll: %v", n, err)
		}
		tampers := g.Server.Count(deviceapi.EventTamper)
		if e.Restricted() != (tampers == 1) || tampers > 1 {
			t.Fatalf("cut %d (%v): restricted %v with %d tamper reports", n, g.Device.Inj.Names()[start:], e.Restricted(), tampers)
		}
		if !cut {
			if !e.Restricted() {
				t.Fatal("no cut, yet no alert")
			}
			t.Logf("%d cut points while raising an alert", n)
			return
		}
	}
}
