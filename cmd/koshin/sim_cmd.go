package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/koshin-ota/koshin/sim"
	"github.com/koshin-ota/koshin/trust"
)

func init() { register((*Main).simCmd) }

type simFlags struct {
	server, caFile, imageRoot, directorRoot string
	tokensFile, jsonOut, onReady            string
	cpuProfile, memProfile                  string
	serverPID                               int
	outageAt, outageFor                     time.Duration
	cfg                                     sim.Config
}

func (m *Main) simCmd() *cobra.Command {
	var f simFlags
	c := &cobra.Command{
		Use:   "sim --server URL --ca FILE --factory NAME --devices N [scenario flags]",
		Short: "Run a simulated fleet of real agents against a server",
		Long: `sim runs N simulated devices in this process against a koshin server's device
API. Each is the real agent engine with the real verifier and device API
client over mutual TLS, on a simulated board (A/B slot files, a U-Boot-style
boot counter, power-cut injection). Devices start on the factory release
(--factory, fetched and verified from the server's image repository) and do
whatever the server's rollouts tell them.

Devices enroll by factory pre-authorisation: their keys are derived from
--seed, and 'koshin sim preauth' prints the list to upload first with
'koshin device preauthorize --csv'. With --tokens FILE, device i enrolls
with the one-time token on line i instead.

Scenarios (shares are fractions of the fleet, chosen reproducibly from the
seed): --health-fail, --boot-fail, --power-cuts, --link-latency/--link-rate/
--link-drop, --rogue-mirror, --outage-at/--outage-for (then every device
reconnects at once), --postpone/--decline (users of consent-mode rollouts).

Progress goes to standard error; the JSON summary to standard output (or
--json FILE). The exit status is 1 if any device ended bricked, on a
tampered image, with its anti-rollback counter ahead of its image, or lost.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return m.simRun(ctx, f)
		},
	}
	addSimFlags(c, &f)
	c.AddCommand(m.simPreauthCmd(), m.simLabCmd())
	return c
}

func addSimFlags(c *cobra.Command, f *simFlags) {
	fl, s := c.Flags(), &f.cfg.Scenario
	fl.StringVar(&f.server, "server", "", "device API base `URL` (https://HOST:PORT)")
	fl.StringVar(&f.caFile, "ca", "", "server CA certificate `FILE` (DATA/pki/server-ca.crt)")
	fl.StringVar(&f.imageRoot, "image-root", "", "image repository root `FILE` to provision (default: fetch 1.root.json, trust on first use)")
	fl.StringVar(&f.directorRoot, "director-root", "", "director root `FILE` to provision (default: fetch 1.root.json from the server)")
	fl.StringVar(&f.cfg.Factory, "factory", "", "target `NAME` every device runs at the start")
	fl.StringVar(&f.cfg.HardwareID, "hardware", "demo-board", "hardware `ID` of every device")
	fl.IntVar(&f.cfg.Devices, "devices", 100, "fleet size")
	fl.StringVar(&f.cfg.Seed, "seed", "", "fleet seed: derives keys and serials (default: random, printed)")
	fl.StringVar(&f.cfg.SerialPrefix, "serial-prefix", "SIM", "serial `PREFIX` (PREFIX-000042)")
	fl.StringVar(&f.tokensFile, "tokens", "", "enroll with the one-time tokens in `FILE`, one per line, instead of pre-authorisation")
	fl.StringVar(&f.cfg.Dir, "dir", "", "device directories under `DIR` (default: a new one in /dev/shm or the temporary directory)")
	fl.BoolVar(&f.cfg.Keep, "keep", false, "keep the device directories")
	fl.DurationVar(&f.cfg.Poll, "poll", 0, "poll after ~this long instead of the server's interval (compresses time)")
	fl.DurationVar(&f.cfg.Backoff, "backoff", 0, "back-off base after a failed poll (default: the agent's 30s, at most --poll)")
	fl.DurationVar(&f.cfg.MaxBackoff, "max-backoff", 0, "back-off ceiling (default: the agent's 6h, at most 10 × --poll)")
	fl.DurationVar(&f.cfg.StartJitter, "start-jitter", 0, "spread the first check-ins over this long (default: --poll, or 1s)")
	fl.IntVar(&f.cfg.MaxConns, "max-conns", 0, "open at most this many connections at once (default: the file-descriptor limit less 512)")
	fl.DurationVar(&f.cfg.Timeout, "timeout", 10*time.Minute, "end the run after this long")
	fl.BoolVar(&f.cfg.UntilDone, "until-done", false, "end the run once every device finished an update")
	fl.Float64Var(&s.HealthFail, "health-fail", 0, "share of devices where a new image fails its health check")
	fl.Float64Var(&s.BootFail, "boot-fail", 0, "share of devices where a new image never comes up")
	fl.IntVar(&s.PowerCuts, "power-cuts", 0, "power cuts per device, each at a random write point")
	fl.DurationVar(&s.Link.Latency, "link-latency", 0, "latency added to every request")
	fl.Int64Var(&s.Link.Rate, "link-rate", 0, "bytes per second per response (0: unlimited)")
	fl.Float64Var(&s.Link.Drop, "link-drop", 0, "probability that a response is cut short")
	fl.BoolVar(&s.RogueMirror, "rogue-mirror", false, "fetch payloads from a mirror that flips a byte of each")
	fl.DurationVar(&f.outageAt, "outage-at", 0, "cut every device off this long after all checked in once")
	fl.DurationVar(&f.outageFor, "outage-for", 0, "outage length; then every device reconnects at once")
	fl.Float64Var(&s.Postpone, "postpone", 0, "share of users who postpone consent-mode updates")
	fl.IntVar(&s.PostponeTimes, "postpone-times", 1, "offers a postponing user postpones before accepting")
	fl.Float64Var(&s.Decline, "decline", 0, "share of users who decline consent-mode updates")
	fl.StringVar(&f.jsonOut, "json", "-", "write the JSON summary to `FILE` ('-': standard output)")
	fl.IntVar(&f.serverPID, "server-pid", 0, "report CPU time and peak memory of the server process `PID` (Linux)")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the simulator to `FILE`")
	fl.StringVar(&f.memProfile, "memprofile", "", "write a heap profile of the simulator at the end to `FILE`")
	fl.StringVar(&f.onReady, "on-ready", "", "run shell `COMMAND` once every device checked in (e.g. create and start a rollout)")
}

func (m *Main) simRun(ctx context.Context, f simFlags) error {
	if f.server == "" || f.caFile == "" || f.cfg.Factory == "" {
		return usagef("--server, --ca and --factory are required")
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	line := newTermLine(m.Stderr)
	cfg.Progress = func(s sim.Snapshot) { line.show(s.String()) }
	fleet, err := sim.New(cfg)
	if err != nil {
		return usageError{err}
	}
	fmt.Fprintf(m.Stderr, "koshin sim: %d devices against %s (seed %s)\n", cfg.Devices, cfg.ServerURL, fleet.Seed())
	stopProfiles, err := startProfiles(f.cpuProfile, f.memProfile)
	if err != nil {
		return err
	}
	defer stopProfiles()
	before, perr := readProcUsage(f.serverPID)
	atReady := make(chan procUsage, 1)
	go m.whenReady(ctx, fleet, f, line, atReady)
	sum, err := fleet.Run(ctx)
	line.clear()
	if err != nil {
		return err
	}
	out := simOutput{Summary: sum, Sim: selfUsage()}
	if f.serverPID > 0 {
		out.Server = serverUsage(before, perr, atReady, f.serverPID, sum)
	}
	fmt.Fprint(m.Stderr, sum.String())
	if err := m.writeSimJSON(f.jsonOut, out); err != nil {
		return err
	}
	if !sum.OK() {
		return fmt.Errorf("%d bricked, %d on a tampered image, %d inconsistent, %d lost", sum.Bricked, sum.OnTampered, sum.Inconsistent, sum.Lost)
	}
	return nil
}

// config turns the flags into the simulator's configuration.
func (f *simFlags) config() (sim.Config, error) {
	cfg := f.cfg
	cfg.ServerURL = strings.TrimRight(f.server, "/")
	cfg.Channel = trust.ChannelRelease
	cfg.Scenario.Outage = sim.Outage{At: f.outageAt, For: f.outageFor}
	var err error
	if cfg.ServerCA, err = os.ReadFile(f.caFile); err != nil {
		return cfg, fmt.Errorf("server CA: %w", err)
	}
	for _, r := range []struct {
		file string
		dst  *[]byte
	}{{f.imageRoot, &cfg.ImageRoot}, {f.directorRoot, &cfg.DirectorRoot}} {
		if r.file != "" {
			if *r.dst, err = os.ReadFile(r.file); err != nil {
				return cfg, err
			}
		}
	}
	if f.tokensFile != "" {
		if cfg.Tokens, err = readLines(f.tokensFile); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// maxTokens bounds a tokens file.
const maxTokens = sim.MaxDevices

func readLines(name string) ([]string, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var out []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() && len(out) <= maxTokens {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}

// whenReady waits for the fleet to be up, notes the server's CPU time
// then, and runs the --on-ready command.
func (m *Main) whenReady(ctx context.Context, fleet *sim.Fleet, f simFlags, line *termLine, atReady chan<- procUsage) {
	select {
	case <-fleet.Ready():
	case <-ctx.Done():
		return
	}
	if u, err := readProcUsage(f.serverPID); err == nil && f.serverPID > 0 {
		atReady <- u
	}
	if f.onReady == "" {
		return
	}
	line.clear()
	fmt.Fprintf(m.Stderr, "fleet ready; running %s\n", f.onReady)
	if err := runHook(ctx, f.onReady, m.Stderr); err != nil {
		fmt.Fprintf(m.Stderr, "--on-ready: %v\n", err)
	}
}

// simOutput is the JSON the command writes.
type simOutput struct {
	*sim.Summary
	Server *procReport `json:"server_process,omitempty"`
	Sim    *procReport `json:"sim_process,omitempty"`
}

func (m *Main) writeSimJSON(name string, out simOutput) error {
	w := m.Stdout
	if name != "-" {
		fh, err := os.Create(name)
		if err != nil {
			return err
		}
		defer fh.Close()
		w = fh
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func (m *Main) simPreauthCmd() *cobra.Command {
	var seed, prefix, hardware, group, tags string
	var devices int
	c := &cobra.Command{
		Use:   "preauth --seed S --devices N",
		Short: "Print the pre-authorisation CSV of a simulated fleet (for koshin device preauthorize)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if seed == "" || devices < 1 || devices > sim.MaxDevices {
				return usagef("--seed is required and --devices must be 1-%d", sim.MaxDevices)
			}
			var tl []string
			if tags != "" {
				tl = strings.Split(tags, ";")
			}
			_, err := m.Stdout.Write(sim.PreauthCSV(seed, prefix, hardware, group, tl, 0, devices))
			return err
		},
	}
	c.Flags().StringVar(&seed, "seed", "", "fleet seed (the same as koshin sim's)")
	c.Flags().IntVar(&devices, "devices", 100, "fleet size")
	c.Flags().StringVar(&prefix, "serial-prefix", "SIM", "serial `PREFIX`")
	c.Flags().StringVar(&hardware, "hardware", "demo-board", "hardware `ID`")
	c.Flags().StringVar(&group, "group", "", "group the devices join")
	c.Flags().StringVar(&tags, "tags", "", "tags the devices get, separated by ';'")
	return c
}

// termLine is a progress line: rewritten in place on a terminal, printed
// every few seconds elsewhere (logs, pipes).
type termLine struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	last  time.Time
	shown bool
}

func newTermLine(w io.Writer) *termLine { return &termLine{w: w, tty: isTerminal(w)} }

const logLineEvery = 5 * time.Second

func (l *termLine) show(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tty {
		fmt.Fprintf(l.w, "\r\033[K%s", s)
		l.shown = true
		return
	}
	if time.Since(l.last) >= logLineEvery {
		fmt.Fprintln(l.w, s)
		l.last = time.Now()
	}
}

// clear ends an in-place line so that the next output starts clean.
func (l *termLine) clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tty && l.shown {
		fmt.Fprint(l.w, "\r\033[K")
		l.shown = false
	}
}
