package sim

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/agenttest"
	"github.com/koshin-ota/koshin/agent/install"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/verify"
)

// Board constants of every simulated device.
const (
	bootLimit = 3
	// maxBoots bounds a device's boots in one run (every reboot and power
	// cycle counts), so a device stuck in a loop cannot spin forever.
	maxBoots = 10_000
	// enrollAttempts bounds one device's enrollment requests.
	enrollAttempts = 20
)

// device is one simulated device. Its fields are used by its own
// goroutine only, except the atomics, which the progress reporter reads.
type device struct {
	f       *Fleet
	i       int
	id      Identity
	persona persona
	dir     string

	board *agenttest.Device
	tr    *http.Transport
	api   *deviceapi.Client
	fetch *http.Client
	log   *slog.Logger

	state      atomic.Int32
	retryUntil atomic.Int64 // unix nanoseconds: the server's Retry-After
	ready      atomic.Bool  // checked in successfully at least once
	stormSeen  atomic.Bool  // checked in successfully since the storm began
	offline    atomic.Bool  // refuses the network (final check)
	// interrupted: a power cut or a dropped link hit the transaction in
	// flight; a later commit counts as a resumed install.
	interrupted atomic.Bool
	// netFailures counts the device's failed requests, so that a failed
	// poll can be told apart: network (already counted) or agent.
	netFailures atomic.Int64

	delivered map[string]bool // event IDs the server acknowledged
	lastFinal deviceapi.EventType
	lastTx    string
	txActive  bool
	postponed int
	cutWindow int // write points the next power cut is drawn from
	declined  bool
}

// run is the device's life: enroll, build the board, then boot and poll
// until ctx ends.
func (d *device) run(ctx context.Context) {
	if err := d.setup(ctx); err != nil {
		if ctx.Err() == nil {
			d.f.agentError("set-up", err)
			d.f.log.Warn("device lost", "serial", d.id.Serial, "err", err)
		}
		d.lose()
		return
	}
	d.live(ctx)
}

// setup enrolls the device (unless done already, as for device 0) and
// creates its board: slot A holds the factory image, committed, and the
// trust core is provisioned with both roots.
func (d *device) setup(ctx context.Context) error {
	f := d.f
	select {
	case f.setupSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-f.setupSlots }()
	if d.api == nil {
		if err := d.enroll(ctx); err != nil {
			return err
		}
	}
	board, err := agenttest.NewDevice(d.dir, agenttest.DeviceConfig{SlotSize: f.slotSize, SlotA: f.factory.image,
		BootLimit: bootLimit, Seed: f.seed64 ^ uint64(d.i)*0x9e3779b97f4a7c15})
	if err != nil {
		return err
	}
	if err := (&agent.FileCounter{FS: agent.DirFS(board.State.Dir)}).Advance(f.factory.custom.Component, f.factory.custom.ReleaseCounter); err != nil {
		return err
	}
	if err := verify.Provision(board.MetaDir, f.imageRoot, f.directorRoot, f.cfg.Channel); err != nil {
		return err
	}
	d.board = board
	return nil
}

// enroll obtains the device certificate over the device API and builds the
// device's mutual-TLS clients.
func (d *device) enroll(ctx context.Context) error {
	f := d.f
	csr, err := d.id.csr()
	if err != nil {
		return err
	}
	req := deviceapi.EnrollRequest{CSR: csr, Serial: d.id.Serial, HardwareID: f.cfg.HardwareID}
	if f.cfg.Tokens != nil {
		req.Token = f.cfg.Tokens[d.i]
	}
	tr := f.newTransport(d.i, nil)
	defer tr.CloseIdleConnections()
	c := deviceapi.NewClient(f.cfg.ServerURL, &http.Client{Transport: &link{d: d, base: tr}, Timeout: time.Minute})
	// A device keeps trying to join, honouring Retry-After, while the
	// server sheds load.
	c.Attempts, c.MaxBackoff = enrollAttempts, f.cfg.MaxBackoff
	resp, err := c.Enroll(ctx, req)
	if err != nil {
		return fmt.Errorf("enroll %s: %w", d.id.Serial, err)
	}
	if resp.DeviceID != d.id.ID {
		return fmt.Errorf("enroll %s: server named the device %s, expected %s", d.id.Serial, resp.DeviceID, d.id.ID)
	}
	blk, _ := pem.Decode([]byte(resp.Certificate))
	if blk == nil || blk.Type != "CERTIFICATE" {
		return fmt.Errorf("enroll %s: no certificate in the answer", d.id.Serial)
	}
	cert := &tls.Certificate{Certificate: [][]byte{blk.Bytes}, PrivateKey: d.id.Key}
	d.tr = f.newTransport(d.i, cert)
	rt := &link{d: d, base: d.tr}
	d.api = deviceapi.NewClient(f.cfg.ServerURL, &http.Client{Transport: rt, Timeout: time.Minute})
	// The simulator's poll loop backs off and honours Retry-After itself,
	// and counts every answer; the client must not retry behind its back.
	d.api.Attempts = 1
	d.fetch = &http.Client{Transport: rt}
	return nil
}

// bootKind says how the board comes up.
type bootKind int

const (
	powerOn bootKind = iota // power returns (first start, after a cut)
	reboot                  // clean reboot: caches flushed first
)

// live boots the board and runs the agent until ctx ends, rebooting and
// power-cycling as the engine and the scenario demand.
func (d *device) live(ctx context.Context) {
	wait := d.f.randDuration(d.f.cfg.StartJitter)
	how := powerOn
	for boots := 0; ctx.Err() == nil && boots < maxBoots; boots++ {
		if err := d.boot(how); err != nil {
			d.f.agentError("boot", err)
			d.lose()
			return
		}
		eng, err := agent.New(d.engineConfig())
		if err != nil {
			d.f.agentError("engine", err)
			d.lose()
			return
		}
		how = d.runBoot(ctx, eng, &wait)
		eng.Close()
		d.tr.CloseIdleConnections()
	}
}

// runBoot runs one boot of the agent: Start, then polls. It returns how
// the next boot happens.
func (d *device) runBoot(ctx context.Context, eng *agent.Engine, wait *time.Duration) bootKind {
	err := eng.Start(ctx)
	d.observe(ctx, eng)
	d.idle()
	if how, done := d.afterError(ctx, err); done {
		return how
	}
	if err != nil {
		d.f.agentError("start", err)
		*wait = d.backoff(1, err)
	}
	failures := 0
	for ctx.Err() == nil {
		if d.sleep(ctx, *wait) != nil {
			return reboot
		}
		before := d.netFailures.Load()
		next, err := eng.Poll(ctx)
		d.observe(ctx, eng)
		d.idle()
		if how, done := d.afterError(ctx, err); done {
			*wait = d.f.randDuration(d.f.cfg.StartJitter)
			return how
		}
		if err != nil {
			failures++
			d.f.pollFailed(err, d.netFailures.Load() > before)
			*wait = d.backoff(failures, err)
			continue
		}
		failures = 0
		*wait = d.interval(next)
	}
	return reboot
}

// afterError decides whether err ends this boot: a reboot the engine asked
// for, or a power cut.
func (d *device) afterError(ctx context.Context, err error) (bootKind, bool) {
	switch {
	case d.board.Inj.Dead():
		d.powerLost()
		return powerOn, true
	case errors.Is(err, agent.ErrReboot):
		return reboot, true
	case ctx.Err() != nil:
		return reboot, true
	}
	return reboot, false
}

// boot brings the board up. A board whose new image never comes up
// (BootFail) resets before the agent starts, until the bootloader's
// counter falls back to the old slot. Power cuts during the bootloader's
// own environment writes just mean another power-on.
func (d *device) boot(how bootKind) error {
	b := d.board
	for try := 0; try < 4*bootLimit+4; try++ {
		var err error
		if how == reboot && try == 0 {
			_, err = b.Reboot()
		} else {
			_, err = b.PowerOn()
		}
		if b.Inj.Dead() {
			d.powerLost()
			continue
		}
		if err != nil {
			return err
		}
		if d.trialCrashes() {
			continue // the watchdog resets the board
		}
		d.armPowerCut()
		return nil
	}
	return errors.New("sim: the board does not come up")
}

// trialCrashes: a BootFail device running its trial image crashes before
// the agent starts.
func (d *device) trialCrashes() bool {
	if !d.persona.bootFail {
		return false
	}
	bs, err := d.board.Boot.State()
	return err == nil && bs.Trial && bs.Booted == bs.Primary
}

// armPowerCut schedules the device's next power cut at a random write
// point among the next ones, while it has cuts left. Idle polls write
// nothing, so the cut lands in the device's next update steps.
func (d *device) armPowerCut() {
	inj := d.board.Inj
	if d.offline.Load() || inj.Cuts() >= d.f.cfg.Scenario.PowerCuts {
		inj.CutAt(-1)
		return
	}
	if d.cutWindow == 0 {
		d.cutWindow = d.f.cutWindow
	}
	inj.CutAt(inj.Count() + 1 + rand.IntN(d.cutWindow))
}

// powerLost notes a power cut. The next cut is drawn from a narrower
// window: the update resumes part-way, so fewer of its write points lie
// ahead, and a cut drawn past its end would never happen.
func (d *device) powerLost() {
	d.f.powerCuts.Add(1)
	d.cutWindow = max(4, d.cutWindow/2)
	if d.txActive {
		d.interrupted.Store(true)
	}
}

// engineConfig wires a fresh engine for this boot: the real verifier (new,
// as after a reboot), the board, and the device's network.
func (d *device) engineConfig() agent.Config {
	f := d.f
	v, err := verify.New(verify.Config{
		Device: trust.Device{ID: d.id.ID, HardwareID: f.cfg.HardwareID, Channel: f.cfg.Channel},
		Dir:    d.board.MetaDir, ImageURL: f.cfg.ServerURL + "/device/v1/image",
		DirectorURL: f.cfg.ServerURL + "/device/v1/director", TargetsURL: f.targetsURL,
		Fetcher: &verify.HTTPFetcher{Client: d.fetch}, Now: time.Now, WriteFile: d.board.WriteMetadata,
	})
	var verifier agent.Verifier = failingVerifier{err}
	if err == nil {
		verifier = &agenttest.Verifier{Verifier: &agent.TrustVerifier{V: v}, Inj: d.board.Inj}
	}
	return agent.Config{
		DeviceID: d.id.ID, HardwareID: f.cfg.HardwareID, Signer: d.id.Key,
		Server: simServer{d}, Verifier: verifier,
		Fetcher:    fetcher{d: d, f: &verify.HTTPFetcher{Client: d.fetch}},
		Bootloader: d.board.Boot, Slots: d.board.Slots,
		Installers: map[string]agent.Installer{f.factory.custom.Component: &install.Raw{Slots: d.board.Slots}},
		Health:     health{d}, Counter: d.board.Counter(), State: d.board.State,
		Reboot:   func(context.Context) error { return nil },
		Approve:  d.approve,
		Factory:  f.factory.installed,
		Settings: deviceapi.Settings{UpdatesEnabled: true, Automatic: true, Notifications: true},
		// The payloads are small: checkpoint often so that cuts and drops
		// resume mid-payload, and retry a dropped transfer soon.
		CheckpointEvery: f.cfg.CheckpointEvery,
		RetryDelay:      func(n int) time.Duration { return min(100*time.Millisecond<<min(n, 6), 5*time.Second) },
		AgentVersion:    "koshin-sim",
		Log:             d.log,
	}
}

// failingVerifier stands in when the verifier cannot be built (its state
// directory is damaged): every update fails, visibly.
type failingVerifier struct{ err error }

func (v failingVerifier) Check(context.Context, []byte, string, map[string]uint64) ([]agent.Target, error) {
	return nil, v.err
}

func (v failingVerifier) Payload(agent.Target, io.Reader, int64, []byte) (agent.PayloadReader, error) {
	return nil, v.err
}

// sleep waits d, or until ctx ends, or until the fleet is woken at once
// (the end of an outage).
func (d *device) sleep(ctx context.Context, dur time.Duration) error {
	t := time.NewTimer(max(dur, 0))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-d.f.wakeup():
		return nil
	}
}

// interval is when to poll next: the simulator's Poll if set, else what
// the server asked for.
func (d *device) interval(server time.Duration) time.Duration {
	if p := d.f.cfg.Poll; p > 0 {
		return p/2 + d.f.randDuration(p)
	}
	if server <= 0 {
		return time.Minute
	}
	return server
}

// backoff is the agent's rule: full jitter over an exponential ceiling,
// never shorter than the server's Retry-After.
func (d *device) backoff(n int, err error) time.Duration {
	c := d.f.cfg
	ceil := min(c.Backoff<<min(n, 20), c.MaxBackoff)
	wait := d.f.randDuration(ceil)
	var se *deviceapi.StatusError
	if errors.As(err, &se) && se.RetryAfter > wait {
		wait = se.RetryAfter
	}
	if ra := time.Until(time.Unix(0, d.retryUntil.Load())); ra > wait {
		wait = ra
	}
	return wait
}

// idle closes the device's connections between polls.
func (d *device) idle() { d.tr.CloseIdleConnections() }

func (d *device) checkedIn() {
	if d.ready.CompareAndSwap(false, true) {
		d.state.CompareAndSwap(int32(StateEnrolling), int32(StateIdle))
		d.f.readyOne()
	}
	if d.f.stormOn.Load() && d.stormSeen.CompareAndSwap(false, true) {
		d.f.stormOne()
	}
}

func (d *device) setState(s State) { d.state.Store(int32(s)) }

// lose gives up on the device; a fleet waiting for it to check in stops
// waiting.
func (d *device) lose() {
	d.setState(StateLost)
	if !d.ready.Load() {
		d.f.lostOne()
	}
}

// State returns the device's state for display.
func (d *device) State() State { return State(d.state.Load()) }
