package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/sim"
	"github.com/koshin-ota/koshin/trust/keys"
)

func init() { register((*Main).quickstartCmd) }

type quickstartFlags struct {
	devices      int
	failing      int
	keep         bool
	exitWhenDone bool
	timeout      time.Duration
	// lab tunes the lab (tests make it cheap).
	lab labOptions
	// poll is the simulated devices' poll interval.
	poll time.Duration
}

func (m *Main) quickstartCmd() *cobra.Command {
	f := quickstartFlags{failing: -1, poll: 2 * time.Second}
	c := &cobra.Command{
		Use:   "quickstart",
		Short: "Run a server and a simulated fleet, and update the fleet with a phased rollout",
		Long: `quickstart shows the whole system working, with nothing installed but koshin:
in a temporary directory it starts a real koshin server on 127.0.0.1 (SQLite
and files), creates an administrator with a random password, signs releases
1.0 and 1.1 of a small demo image with fresh release-channel keys (held in
memory), imports them, and starts simulated devices that run the real agent
(mutual TLS, the real verifier, A/B slots with a U-Boot-style boot counter).
The devices enroll on 1.0 by factory pre-authorisation. A three-phase
rollout of 1.1 follows (5 % canary, 30 %, 100 %, short soak); on a few
devices the new image fails its health check and the agent rolls it back
on its own. The failures stay below the rollout's halt threshold unless
--failing asks for more.

Simulated devices poll every ~2 s to keep the run short; the server tells
real devices to come back after its poll interval (at least 10 s).

It exits 0 when the rollout completed as expected: every healthy device
updated, every failing one rolled back, none bricked. With --keep the
directory is kept and the server keeps running until Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return m.quickstart(ctx, f)
		},
	}
	c.Flags().IntVar(&f.devices, "devices", 200, "simulated devices")
	c.Flags().IntVar(&f.failing, "failing", -1, "devices on which 1.1 fails its health check (default: about 1.5 %, at least 2)")
	c.Flags().BoolVar(&f.keep, "keep", false, "keep the directory and leave the server running until Ctrl-C")
	c.Flags().BoolVar(&f.exitWhenDone, "exit-when-done", false, "exit as soon as the rollout is over, even with --keep: 0 if it completed as expected, else 1")
	c.Flags().DurationVar(&f.timeout, "timeout", 3*time.Minute, "give up after this long")
	return c
}

// quickstartMaxDevices keeps the quickstart a quickstart; koshin sim runs
// larger fleets.
const quickstartMaxDevices = 5000

func (m *Main) quickstart(ctx context.Context, f quickstartFlags) error {
	if f.devices < 4 || f.devices > quickstartMaxDevices {
		return usagef("--devices must be 4-%d", quickstartMaxDevices)
	}
	if f.failing < 0 {
		f.failing = min(max(2, f.devices*3/200), f.devices/4)
	}
	if f.failing >= f.devices || f.timeout <= 0 {
		return usagef("--failing must be below --devices, --timeout positive")
	}
	dir, err := os.MkdirTemp("", "koshin-quickstart-*")
	if err != nil {
		return err
	}
	if !f.keep {
		defer os.RemoveAll(dir)
	}
	runCtx, cancel := context.WithTimeout(ctx, f.timeout)
	q := &quickstart{m: m, f: f, dir: dir, out: m.Stdout, start: time.Now(), line: newTermLine(m.Stdout)}
	runErr := q.run(runCtx)
	cancel()
	if q.lab != nil {
		if f.keep && !f.exitWhenDone && ctx.Err() == nil {
			q.hold(ctx)
		}
		q.lab.close()
	}
	if f.keep {
		fmt.Fprintf(q.out, "kept %s\n", dir)
	}
	return runErr
}

// quickstart is one run.
type quickstart struct {
	m     *Main
	f     quickstartFlags
	dir   string
	out   io.Writer
	start time.Time
	line  *termLine
	lab   *lab
	seed  string
	fleet *sim.Fleet
}

func (q *quickstart) say(format string, a ...any) {
	q.line.clear()
	fmt.Fprintf(q.out, format+"\n", a...)
}

func (q *quickstart) run(ctx context.Context) error {
	q.say("koshin quickstart: %d simulated devices, one phased rollout (working directory %s)", q.f.devices, q.dir)
	if q.f.keep {
		q.say("The directory is kept. Ctrl-C stops the server.\n")
	} else {
		q.say("Ctrl-C stops everything and removes the directory.\n")
	}
	if err := q.setUp(ctx); err != nil {
		return err
	}
	fleetCtx, stopFleet := context.WithCancel(ctx)
	defer stopFleet()
	done := make(chan fleetResult, 1)
	go func() {
		s, err := q.fleet.Run(fleetCtx)
		done <- fleetResult{s, err}
	}()
	if err := q.waitReady(ctx, done); err != nil {
		return err
	}
	st, err := q.rollOut(ctx)
	stopFleet()
	res := <-done
	q.line.clear()
	if err != nil {
		return err
	}
	if res.err != nil {
		return res.err
	}
	return q.report(st, res.summary)
}

type fleetResult struct {
	summary *sim.Summary
	err     error
}

// setUp builds the lab and the fleet's configuration.
func (q *quickstart) setUp(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(q.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	o := q.f.lab
	o.log = logf
	if o.imageSize == 0 {
		o.imageSize = 256 << 10
	}
	if o.kdf == (keys.KDFParams{}) {
		o.kdf = q.m.KDF
	}
	q.lab, err = newLab(ctx, q.m, q.dir, o)
	if err != nil {
		return err
	}
	l := q.lab
	q.say("  ✓ server running: device API %s, management API %s", l.srv.DeviceURL(), l.srv.ManagementURL())
	q.say("    server CA SHA-256 %s", l.srv.PKI.ServerCAFingerprint())
	q.say("    web UI %s (its certificate comes from the server CA in %s)", l.srv.UIURL(), q.serverCAFile())
	q.say("  ✓ administrator %q created with a random password (no default account exists):", l.admin)
	q.say("      %s", l.password)
	q.say("  ✓ release-channel repository keys created; releases 1.0 and 1.1 (%d KiB each) signed, published, imported", o.imageSize>>10)
	q.seed = sim.NewSeed()
	if err := l.preauthorize(ctx, q.seed, "QS", "quickstart", q.f.devices); err != nil {
		return err
	}
	q.say("  ✓ %d device keys pre-authorised (factory list upload)", q.f.devices)
	return q.newFleet()
}

func (q *quickstart) newFleet() error {
	l := q.lab
	dirRoot, err := l.directorRoot()
	if err != nil {
		return err
	}
	q.fleet, err = sim.New(sim.Config{
		ServerURL: l.srv.DeviceURL(), ServerCA: l.serverCA(), ImageRoot: l.imageRoot, DirectorRoot: dirRoot,
		Devices: q.f.devices, HardwareID: labHardware, Factory: labReleases[0].name,
		Seed: q.seed, SerialPrefix: "QS", Poll: q.f.poll,
		Scenario: sim.Scenario{HealthFail: float64(q.f.failing) / float64(q.f.devices)},
		Timeout:  q.f.timeout,
	})
	return err
}

// waitReady waits until every device enrolled and checked in once.
func (q *quickstart) waitReady(ctx context.Context, done <-chan fleetResult) error {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-q.fleet.Ready():
			s := q.fleet.Snapshot()
			q.say("  ✓ %d devices enrolled over mutual TLS and running 1.0 (%d lost)", s.Devices-s.Count(sim.StateLost), s.Count(sim.StateLost))
			return nil
		case res := <-done:
			if res.err != nil {
				return res.err
			}
			return errors.New("the simulated fleet stopped before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("waiting for the devices: %w", ctx.Err())
		case <-t.C:
			s := q.fleet.Snapshot()
			q.line.show(fmt.Sprintf("    enrolling: %d of %d devices checked in", s.Devices-s.Count(sim.StateEnrolling), s.Devices))
		}
	}
}

// threshold is the rollout's per-phase halt threshold: 5 % of the fleet,
// at least 5 devices.
func (q *quickstart) threshold() int { return max(5, q.f.devices/20) }

// rollOut creates and starts the rollout of 1.1 and follows it to its end.
func (q *quickstart) rollOut(ctx context.Context) (labStatus, error) {
	soak := 2 * time.Second
	spec := map[string]any{
		"name": "demo-os 1.1 to the fleet", "release": labReleases[1].name, "selector": map[string]any{"groups": []string{"quickstart"}},
		"phases":    []map[string]any{{"percent": 5, "soak": soak}, {"percent": 30, "soak": soak}, {"percent": 100}},
		"threshold": map[string]any{"max_failures": q.threshold()}, "silence_timeout": 5 * time.Minute, "mode": "automatic",
	}
	id, err := q.lab.startRollout(ctx, spec)
	if err != nil {
		return labStatus{}, err
	}
	q.say("  ✓ rollout %d of 1.1 started: 5 %% canary, 30 %%, 100 %%; %s soak; halts a phase at %d failures", id, soak, q.threshold())
	return q.follow(ctx, id)
}

// follow shows the rollout's progress until it ends.
func (q *quickstart) follow(ctx context.Context, id int64) (labStatus, error) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	var st labStatus
	for {
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("following rollout %d: %w", id, ctx.Err())
		case <-t.C:
		}
		var err error
		if st, err = q.lab.rolloutStatus(ctx, id); err != nil {
			return st, err
		}
		ok, failed, busy, _ := st.totals()
		s := q.fleet.Snapshot()
		q.line.show(fmt.Sprintf("    phase %d/%d: %d updated, %d failed, %d in progress | devices: %d on 1.1, %d rolled back, %d updating",
			st.Rollout.Phase+1, len(st.Rollout.Phases), ok, failed, busy, s.Count(sim.StateUpdated), s.Count(sim.StateRolledBack),
			s.Count(sim.StateDownloading)+s.Count(sim.StateInstalling)+s.Count(sim.StateRebooting)))
		if st.Rollout.State.Terminal() || st.Rollout.State == koshin.RolloutHalted {
			return st, nil
		}
	}
}

// report prints the summary and decides the exit status.
func (q *quickstart) report(st labStatus, s *sim.Summary) error {
	ok, failed, _, _ := st.totals()
	r := st.Rollout
	q.say("")
	q.say("Summary after %s:", time.Since(q.start).Round(100*time.Millisecond))
	q.say("  rollout %d: %s", r.ID, r.State)
	if r.State == koshin.RolloutHalted {
		q.say("    halted: %s (no new devices were started; an operator can resume or abort)", r.HaltReason)
	}
	for _, p := range st.Phases {
		q.say("    phase %d: %d devices, %d committed 1.1, %d failed", p.Phase+1, p.Members, p.Succeeded, p.Failed)
	}
	q.say("  devices: %d updated to 1.1, %d rolled back to 1.0 by their agent (health check failed on 1.1), %d on 1.0 untouched",
		s.Updated, s.RolledBack, s.Releases[labReleases[0].name]-s.RolledBack)
	q.say("  bricked devices: %d; check-ins: %d, p50 %.1f ms, p99 %.1f ms; unexpected errors: %d",
		s.Bricked, s.CheckIns.Count, s.CheckIns.P50, s.CheckIns.P99, s.UnexpectedErrors)
	if s.UnexpectedErrors > 0 || len(s.AgentErrors) > 0 {
		q.say("  errors by kind: %v %v", s.Errors, s.AgentErrors)
	}
	q.say("  server log: %s", filepath.Join(q.dir, "server.log"))
	want := q.f.devices - q.f.failing
	if r.State == koshin.RolloutCompleted && ok == want && failed == q.f.failing &&
		s.Updated == want && s.RolledBack == q.f.failing && s.OK() {
		q.say("\nThe rollout completed as expected.")
		return nil
	}
	return fmt.Errorf("the rollout did not complete as expected (state %s, %d of %d updated, %d rolled back of %d failing, %d bricked)",
		r.State, s.Updated, want, s.RolledBack, q.f.failing, s.Bricked)
}

// hold keeps the server running until Ctrl-C, and says how to look at it:
// an API token for the CLI and the director key's passphrase are written
// to files only the user can read.
func (q *quickstart) hold(ctx context.Context) {
	l := q.lab
	ca := q.serverCAFile()
	pass := filepath.Join(q.dir, "director-passphrase")
	tokenFile := filepath.Join(q.dir, "api-token")
	var tok struct{ Token string }
	err := l.api.do(ctx, "POST", "/api/v1/tokens", map[string]any{"name": "quickstart-cli"}, &tok)
	if err == nil {
		err = os.WriteFile(tokenFile, []byte(tok.Token+"\n"), 0o600)
	}
	if err == nil {
		err = os.WriteFile(pass, append(bytes.Clone(l.passphrase), '\n'), 0o600)
	}
	if err != nil {
		q.say("could not write the API token and passphrase files: %v", err)
	}
	q.say("\nThe server keeps running; the simulated devices have stopped.")
	q.say("Web UI: %s (sign in as %s with the password above; the browser must trust %s).", l.srv.UIURL(), l.admin, ca)
	q.say("Management API: %s. With the CLI:", l.srv.ManagementURL())
	q.say("  koshin rollout list --server %s --ca %s --token-file %s", l.srv.ManagementURL(), ca, tokenFile)
	q.say("  koshin device list  --server %s --ca %s --token-file %s", l.srv.ManagementURL(), ca, tokenFile)
	q.say("The director key passphrase is in %s. Press Ctrl-C to stop the server.", pass)
	<-ctx.Done()
}

// serverCAFile is the server CA certificate browsers and the CLI trust.
func (q *quickstart) serverCAFile() string {
	return filepath.Join(q.lab.srv.Config.DataDir, pkiDir, "server-ca.crt")
}
