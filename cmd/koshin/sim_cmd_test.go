package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/sim"
	"github.com/koshin-ota/koshin/trust/keys"
)

// simLab is a lab for the simulator's scenario tests: a cheap real server
// whose rollout engine the test ticks every 50 ms, so that phases move as
// soon as their devices finish. Each scenario enrolls its own small fleet
// in its own group and rolls 1.1 out to that group only.
type simLab struct{ *lab }

func newSimLab(t *testing.T, config func(*ServerConfig)) *simLab {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m := NewMain(io.Discard, io.Discard)
	l, err := newLab(ctx, m, t.TempDir(), labOptions{imageSize: 40 << 10, manualEngine: true, password: cheapPassword,
		kdf: keys.KDFParams{Time: 1, MemoryKiB: 8 << 10, Threads: 1},
		config: func(c *ServerConfig) {
			c.Limits.DeviceRate, c.Limits.DeviceBurst = 1000, 1000
			c.Limits.RetryAfter = time.Second
			if config != nil {
				config(c)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				l.srv.Engine.Tick(ctx)
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		l.close()
	})
	return &simLab{lab: l}
}

// scenario is one simulator run against the lab.
type scenario struct {
	name    string
	devices int
	sim     sim.Scenario
	// mode is the rollout's mode; "" runs no rollout.
	mode      string
	threshold int
	// tokens enrolls the devices with one-time enrollment tokens instead
	// of a pre-authorisation list.
	tokens bool
}

// fleetRun is a scenario's outcome: the simulator's summary, the
// rollout's final status and the fleet's device IDs.
type fleetRun struct {
	sum    *sim.Summary
	status labStatus
	ids    map[string]bool
}

// run pre-authorises the scenario's fleet, starts it, rolls 1.1 out to it
// once every device checked in, and returns when every device finished
// an update (or, without a rollout, when the simulator stops by itself).
func (l *simLab) run(t *testing.T, sc scenario) fleetRun {
	t.Helper()
	ctx := context.Background()
	seed, prefix := "seed-"+sc.name, strings.ToUpper(sc.name)
	var tokens []string
	if sc.tokens {
		tokens = l.enrollmentTokens(t, sc.name, sc.devices)
	} else if err := l.preauthorize(ctx, seed, prefix, sc.name, sc.devices); err != nil {
		t.Fatal(err)
	}
	dirRoot, err := l.directorRoot()
	if err != nil {
		t.Fatal(err)
	}
	f, err := sim.New(sim.Config{ServerURL: l.srv.DeviceURL(), ServerCA: l.serverCA(), ImageRoot: l.imageRoot,
		DirectorRoot: dirRoot, Devices: sc.devices, HardwareID: labHardware, Factory: labReleases[0].name,
		Seed: seed, SerialPrefix: prefix, Tokens: tokens, Poll: 200 * time.Millisecond, Backoff: 200 * time.Millisecond,
		MaxBackoff: 2 * time.Second, Scenario: sc.sim, Timeout: 3 * time.Minute, UntilDone: sc.mode != "",
		ProgressEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan fleetResult, 1)
	go func() {
		s, err := f.Run(ctx)
		done <- fleetResult{s, err}
	}()
	var id int64
	if sc.mode != "" {
		select {
		case <-f.Ready():
		case res := <-done:
			t.Fatalf("fleet stopped before it was ready: %v %+v", res.err, res.summary)
		}
		id, err = l.startRollout(ctx, map[string]any{
			"release": labReleases[1].name, "selector": map[string]any{"groups": []string{sc.name}},
			"phases":    []map[string]any{{"percent": 50}, {"percent": 100}},
			"threshold": map[string]any{"max_failures": sc.threshold}, "silence_timeout": 5 * time.Minute, "mode": sc.mode,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	run := fleetRun{sum: res.summary, ids: map[string]bool{}}
	for i := range sc.devices {
		run.ids[sim.DeviceIdentity(seed, prefix, i).ID] = true
	}
	if id != 0 {
		if run.status, err = l.settledStatus(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%s: %s", sc.name, res.summary)
	return run
}

// settledStatus reads the rollout's status once the engine has caught up
// with the fleet: devices stop as soon as they have committed, and the
// engine counts the last commits and completes the rollout on one of its
// next ticks. It polls for a bounded time and returns the last status read,
// which the caller checks.
func (l *simLab) settledStatus(ctx context.Context, id int64) (labStatus, error) {
	var st labStatus
	var err error
	for range 300 {
		if st, err = l.rolloutStatus(ctx, id); err != nil || st.Rollout.State != koshin.RolloutRunning {
			return st, err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return st, err
}

// enrollmentTokens creates n one-time tokens whose devices join group.
func (l *simLab) enrollmentTokens(t *testing.T, group string, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		var created struct{ Token string }
		if err := l.api.do(context.Background(), "POST", "/api/v1/enrollment-tokens", map[string]any{"group": group}, &created); err != nil {
			t.Fatal(err)
		}
		out[i] = created.Token
	}
	return out
}

// events counts the server's events of typ from the run's devices.
func (l *simLab) events(t *testing.T, r fleetRun, typ koshin.EventType) int {
	t.Helper()
	n, err := l.countEvents(context.Background(), typ, r.ids)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkSafe fails unless every device ended on a signed image with a
// consistent counter.
func checkSafe(t *testing.T, s *sim.Summary) {
	t.Helper()
	if !s.OK() {
		t.Errorf("bricked %d %v, on tampered image %d, inconsistent %d, lost %d; agent errors %v",
			s.Bricked, s.BrickedDetail, s.OnTampered, s.Inconsistent, s.Lost, s.AgentErrors)
	}
	if s.UnexpectedErrors != 0 {
		t.Errorf("unexpected errors: %v", s.Errors)
	}
}

// TestSimScenarios runs each of the simulator's scenarios with a small
// fleet against one real server and checks its outcome on both sides:
// what the devices ended on, and what the server recorded.
func TestSimScenarios(t *testing.T) {
	l := newSimLab(t, nil)
	v10, v11 := labReleases[0].name, labReleases[1].name

	t.Run("success", func(t *testing.T) {
		r := l.run(t, scenario{name: "success", devices: 6, mode: "automatic", threshold: 2})
		checkSafe(t, r.sum)
		if r.sum.Updated != 6 || r.sum.Releases[v11] != 6 || r.status.Rollout.State != koshin.RolloutCompleted {
			t.Errorf("updated %d, on 1.1 %d, rollout %s; want 6, 6, completed", r.sum.Updated, r.sum.Releases[v11], r.status.Rollout.State)
		}
		if n := l.events(t, r, koshin.EventCommitted); n != 6 {
			t.Errorf("server recorded %d commits, want 6", n)
		}
	})

	t.Run("enrollment-tokens", func(t *testing.T) {
		r := l.run(t, scenario{name: "tokens", devices: 3, mode: "automatic", threshold: 1, tokens: true})
		checkSafe(t, r.sum)
		if r.sum.Updated != 3 || r.status.Rollout.State != koshin.RolloutCompleted {
			t.Errorf("updated %d, rollout %s; want 3, completed", r.sum.Updated, r.status.Rollout.State)
		}
	})

	t.Run("health-check-fails", func(t *testing.T) {
		r := l.run(t, scenario{name: "health", devices: 8, sim: sim.Scenario{HealthFail: 0.25}, mode: "automatic", threshold: 5})
		checkSafe(t, r.sum)
		if r.sum.Updated != 6 || r.sum.RolledBack != 2 || r.sum.Releases[v10] != 2 || r.sum.Releases[v11] != 6 {
			t.Errorf("updated %d, rolled back %d, releases %v; want 6, 2", r.sum.Updated, r.sum.RolledBack, r.sum.Releases)
		}
		if n := l.events(t, r, koshin.EventRolledBack); n != 2 {
			t.Errorf("server recorded %d rollbacks, want 2", n)
		}
		if r.status.Rollout.State != koshin.RolloutCompleted {
			t.Errorf("rollout %s, want completed (2 failures stay below the threshold of 5)", r.status.Rollout.State)
		}
	})

	t.Run("boot-fails", func(t *testing.T) {
		r := l.run(t, scenario{name: "boot", devices: 6, sim: sim.Scenario{BootFail: 1.0 / 3}, mode: "automatic", threshold: 5})
		checkSafe(t, r.sum)
		if r.sum.Updated != 4 || r.sum.RolledBack != 2 || r.sum.Releases[v10] != 2 {
			t.Errorf("updated %d, rolled back %d, releases %v; want 4, 2", r.sum.Updated, r.sum.RolledBack, r.sum.Releases)
		}
		if n := l.events(t, r, koshin.EventRolledBack); n != 2 {
			t.Errorf("server recorded %d rollbacks, want 2", n)
		}
	})

	t.Run("power-cuts", func(t *testing.T) {
		r := l.run(t, scenario{name: "cuts", devices: 6, sim: sim.Scenario{PowerCuts: 5}, mode: "automatic", threshold: 7})
		checkSafe(t, r.sum)
		if r.sum.PowerCuts < 6 {
			t.Errorf("only %d power cuts happened", r.sum.PowerCuts)
		}
		if r.sum.Updated+r.sum.RolledBack != 6 || r.sum.Releases[v10]+r.sum.Releases[v11] != 6 {
			t.Errorf("updated %d, rolled back %d, releases %v: every device must end on 1.0 or 1.1, finished",
				r.sum.Updated, r.sum.RolledBack, r.sum.Releases)
		}
	})

	t.Run("flaky-link", func(t *testing.T) {
		link := sim.Link{Latency: 2 * time.Millisecond, Rate: 512 << 10, Drop: 0.1}
		r := l.run(t, scenario{name: "link", devices: 6, sim: sim.Scenario{Link: link}, mode: "automatic", threshold: 2})
		checkSafe(t, r.sum)
		if r.sum.Updated != 6 {
			t.Errorf("updated %d, want 6", r.sum.Updated)
		}
		if r.sum.Errors[sim.KindInjectedDrop] == 0 {
			t.Error("no connection was dropped")
		}
	})

	t.Run("rogue-mirror", func(t *testing.T) { testRogueMirror(t, l) })

	t.Run("consent", func(t *testing.T) {
		sc := sim.Scenario{Postpone: 0.25, PostponeTimes: 2, Decline: 0.25}
		r := l.run(t, scenario{name: "consent", devices: 8, sim: sc, mode: "consent", threshold: 2})
		checkSafe(t, r.sum)
		if r.sum.Updated != 6 || r.sum.Declined != 2 || r.sum.Releases[v10] != 2 {
			t.Errorf("updated %d, declined %d, releases %v; want 6, 2", r.sum.Updated, r.sum.Declined, r.sum.Releases)
		}
		if n := l.events(t, r, koshin.EventDeclined); n != 2 {
			t.Errorf("server recorded %d declines, want 2", n)
		}
		if n := l.events(t, r, koshin.EventPostponed); n != 4 {
			t.Errorf("server recorded %d postponements, want 4 (2 users × 2)", n)
		}
	})
}

// testRogueMirror: every device fetches its payload from a mirror that
// flips a byte. Every device must reject the update and report it, and
// none may end on the tampered image.
func testRogueMirror(t *testing.T, l *simLab) {
	r := l.run(t, scenario{name: "mirror", devices: 6, sim: sim.Scenario{RogueMirror: true}, mode: "automatic", threshold: 10})
	checkSafe(t, r.sum)
	if r.sum.OnTampered != 0 || r.sum.Updated != 0 || r.sum.Releases[labReleases[0].name] != 6 {
		t.Errorf("on tampered image %d, updated %d, releases %v; want 0, 0, all on 1.0", r.sum.OnTampered, r.sum.Updated, r.sum.Releases)
	}
	if r.sum.Rejected != 6 || r.sum.Events[string(koshin.EventRejected)] != 6 {
		t.Errorf("rejected %d, rejections delivered %d; want 6, 6", r.sum.Rejected, r.sum.Events[string(koshin.EventRejected)])
	}
	if n := l.events(t, r, koshin.EventRejected); n != 6 {
		t.Errorf("server recorded %d rejected-invalid-update events, want 6", n)
	}
}

// TestSimReconnectStorm cuts a fleet off, then brings every device back at
// once against a server that admits few requests at a time: the devices
// may be told to come back later (503/429 with Retry-After), but nothing
// else may fail, and every device must check in again.
func TestSimReconnectStorm(t *testing.T) {
	l := newSimLab(t, func(c *ServerConfig) { c.Limits.MaxInFlight = 4 })
	r := l.run(t, scenario{name: "storm", devices: 24, sim: sim.Scenario{Outage: sim.Outage{At: 100 * time.Millisecond, For: 500 * time.Millisecond}}})
	checkSafe(t, r.sum)
	st := r.sum.Storm
	if st == nil {
		t.Fatalf("no storm in the summary (ended: %s)", r.sum.Ended)
	}
	if st.CheckedIn != 24 || st.Unexpected != 0 {
		t.Errorf("storm: %d of 24 checked in again, unexpected errors %v", st.CheckedIn, st.Errors)
	}
	if r.sum.Errors[sim.KindInjectedDown] == 0 {
		t.Error("no device noticed the outage")
	}
}

// TestSimCommand drives the command line: `koshin sim lab` prepares an
// installation, its server runs from the written configuration, and
// `koshin sim` runs a small fleet through an outage against it, writing
// its JSON summary.
func TestSimCommand(t *testing.T) {
	dir := t.TempDir()
	m, out := cheapMain()
	if code := m.Run([]string{"sim", "lab", "--dir", dir, "--devices", "4", "--image-size", "8192"}); code != 0 {
		t.Fatalf("sim lab: exit %d\n%s", code, out)
	}
	for _, want := range []string{"lab ready", "password (shown once)", "koshin server --config", "--on-ready"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("sim lab output lacks %q:\n%s", want, out)
		}
	}
	cfg, err := loadServerConfig(filepath.Join(dir, "server.yaml"), func() []string { return nil })
	if err != nil {
		t.Fatal(err)
	}
	pass, err := os.ReadFile(filepath.Join(dir, "director-passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &ServerMain{Config: cfg, Passphrase: func(string) ([]byte, error) { return bytes.TrimSpace(pass), nil }}
	if err := srv.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	seed, _ := os.ReadFile(filepath.Join(dir, "seed"))
	summary := filepath.Join(dir, "summary.json")
	m, out = cheapMain()
	code := m.Run([]string{"sim", "--server", srv.DeviceURL(), "--ca", filepath.Join(dir, "data", "pki", "server-ca.crt"),
		"--image-root", filepath.Join(dir, "published", "1.root.json"), "--factory", labReleases[0].name,
		"--devices", "4", "--seed", strings.TrimSpace(string(seed)), "--serial-prefix", "LAB", "--poll", "200ms",
		"--outage-at", "0s", "--outage-for", "300ms", "--json", summary, "--timeout", "2m"})
	if code != 0 {
		t.Fatalf("sim: exit %d\n%s", code, out)
	}
	var got struct {
		Devices  int
		Bricked  int
		Releases map[string]int
		Storm    *sim.StormSummary
		Sim      *procReport `json:"sim_process"`
	}
	data, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if got.Devices != 4 || got.Bricked != 0 || got.Releases[labReleases[0].name] != 4 || got.Storm == nil || got.Storm.CheckedIn != 4 {
		t.Errorf("summary: %s", data)
	}
}

func cheapMain() (*Main, *bytes.Buffer) {
	var out bytes.Buffer
	m := NewMain(&out, &out)
	m.KDF = keys.KDFParams{Time: 1, MemoryKiB: 8 << 10, Threads: 1}
	return m, &out
}
