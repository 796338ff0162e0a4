package sim

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
)

// Fleet is a simulated fleet. Create it with New, run it with Run; Ready
// and Snapshot may be called while it runs.
type Fleet struct {
	cfg        Config
	log        *slog.Logger
	pool       *x509.CertPool
	serverHost string
	spread     bool
	seed64     uint64
	slotSize   int64
	cutWindow  int
	targetsURL string

	imageRoot, directorRoot []byte
	factory                 factoryImage
	mirror                  *mirror
	devices                 []*device
	personas                Personas
	dir                     string
	ownDir                  bool
	setupSlots              chan struct{}
	conns                   connLimit

	stats                                        *stats
	powerCuts, resumedDownloads, resumedInstalls atomic.Int64
	outage, stormOn                              atomic.Bool
	wake                                         atomic.Pointer[chan struct{}]
	readyN, lostN, stormN                        atomic.Int64
	ready                                        chan struct{}
	readyOnce                                    sync.Once
	start                                        time.Time

	mu          sync.Mutex
	events      map[deviceapi.EventType]int64
	agentErrs   map[string]int64
	targets     map[string]int64 // SHA-256 (hex) → length of every signed target seen
	pollErrors  int64
	stormStart  time.Time
	stormEnd    time.Time
	stormResult *StormSummary
}

// New checks cfg and prepares a fleet; nothing touches the network or the
// disk until Run.
func New(cfg Config) (*Fleet, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Seed == "" {
		cfg.Seed = NewSeed()
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cfg.ServerCA) {
		return nil, errors.New("sim: the server CA holds no PEM certificate")
	}
	u, _ := url.Parse(cfg.ServerURL)
	sum := sha256.Sum256([]byte(cfg.Seed))
	f := &Fleet{cfg: cfg, log: cfg.Log, pool: pool, serverHost: u.Host, seed64: binary.BigEndian.Uint64(sum[:8]),
		setupSlots: make(chan struct{}, 16), stats: newStats(), ready: make(chan struct{}),
		events: map[deviceapi.EventType]int64{}, agentErrs: map[string]int64{}, targets: map[string]int64{}}
	ch := make(chan struct{})
	f.wake.Store(&ch)
	if n := cfg.MaxConns; n > 0 {
		f.conns = make(connLimit, n)
	} else if n := defaultMaxConns(); n > 0 {
		f.conns = make(connLimit, n)
	}
	ps, got := assignPersonas(cfg.Scenario, cfg.Devices, f.seed64)
	f.personas = got
	devLog := slog.New(slog.DiscardHandler)
	if cfg.DeviceLog != nil {
		devLog = slog.New(slog.NewTextHandler(cfg.DeviceLog, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	f.devices = make([]*device, cfg.Devices)
	for i := range f.devices {
		id := DeviceIdentity(cfg.Seed, cfg.SerialPrefix, i)
		f.devices[i] = &device{f: f, i: i, id: id, persona: ps[i], log: devLog.With("serial", id.Serial)}
	}
	return f, nil
}

// Seed returns the fleet's seed (generated if the configuration had none).
func (f *Fleet) Seed() string { return f.cfg.Seed }

// Ready is closed once every device has enrolled and checked in once (or
// was given up on).
func (f *Fleet) Ready() <-chan struct{} { return f.ready }

// Run runs the fleet until the configuration's stop condition, the
// timeout or ctx ends it, then checks every device and returns the
// summary. An error means the fleet could not start at all.
func (f *Fleet) Run(ctx context.Context) (*Summary, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	f.start = time.Now()
	if err := f.prepare(ctx); err != nil {
		f.cleanup()
		return nil, err
	}
	defer f.cleanup()
	devCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	for _, d := range f.devices {
		wg.Go(func() { d.run(devCtx) })
	}
	go f.scheduleOutage(devCtx)
	end := f.watch(ctx)
	stop()
	wg.Wait()
	f.log.Info("simulation ended", "reason", end, "elapsed", time.Since(f.start).Round(time.Millisecond))
	sum := f.finish(end)
	if f.cfg.Progress != nil {
		f.cfg.Progress(f.Snapshot())
	}
	return sum, nil
}

// prepare creates the working directory, enrolls device 0, provisions the
// roots, loads the factory image and starts the rogue mirror.
func (f *Fleet) prepare(ctx context.Context) error {
	if err := f.makeDir(); err != nil {
		return err
	}
	for i, d := range f.devices {
		d.dir = filepath.Join(f.dir, fmt.Sprintf("d%06d", i))
	}
	f.spread = canSpread(f.cfg.ServerURL)
	d0 := f.devices[0]
	if err := d0.enroll(ctx); err != nil {
		return err
	}
	if err := f.loadRoots(ctx, d0); err != nil {
		return err
	}
	if err := f.loadFactory(ctx, d0); err != nil {
		return err
	}
	f.targetsURL = f.cfg.ServerURL + "/device/v1/targets"
	if f.cfg.Scenario.RogueMirror {
		m, err := startMirror(f.cfg.ServerURL, d0.fetch)
		if err != nil {
			return err
		}
		f.mirror, f.targetsURL = m, m.URL()
	}
	f.log.Info("fleet prepared", "devices", f.cfg.Devices, "dir", f.dir, "spread_source_addresses", f.spread,
		"factory", f.cfg.Factory, "slot_size", f.slotSize)
	return nil
}

func (f *Fleet) makeDir() error {
	if f.cfg.Dir != "" {
		f.dir = f.cfg.Dir
		return os.MkdirAll(f.dir, 0o700)
	}
	parent := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		parent = "/dev/shm"
	}
	dir, err := os.MkdirTemp(parent, "koshin-sim-*")
	if err != nil && parent != "" {
		dir, err = os.MkdirTemp("", "koshin-sim-*")
	}
	f.dir, f.ownDir = dir, true
	return err
}

func (f *Fleet) cleanup() {
	if f.mirror != nil {
		f.mirror.close()
	}
	for _, d := range f.devices {
		if d.tr != nil {
			d.tr.CloseIdleConnections()
		}
	}
	if f.ownDir && !f.cfg.Keep && f.dir != "" {
		os.RemoveAll(f.dir)
	}
}

// Dir is where the device directories are.
func (f *Fleet) Dir() string { return f.dir }

// watch reports progress until the run should end, and says why.
func (f *Fleet) watch(ctx context.Context) string {
	t := time.NewTicker(f.cfg.ProgressEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return "timeout"
			}
			return "cancelled"
		case <-t.C:
		}
		s := f.Snapshot()
		if f.cfg.Progress != nil {
			f.cfg.Progress(s)
		}
		switch {
		case f.cfg.Until != nil && f.cfg.Until(s):
			return "until"
		case f.cfg.UntilDone && s.Done() == s.Devices:
			return "done"
		case f.cfg.Until == nil && !f.cfg.UntilDone && f.stormFinished():
			return "storm over"
		}
	}
}

// Snapshot counts the devices per state.
func (f *Fleet) Snapshot() Snapshot {
	s := Snapshot{Elapsed: time.Since(f.start), Devices: len(f.devices), PowerCuts: f.powerCuts.Load(),
		Outage: f.outage.Load(), Storm: f.stormOn.Load()}
	for _, d := range f.devices {
		s.States[d.State()]++
	}
	f.stats.mu.Lock()
	s.CheckIns = f.stats.checkins.summary()
	for k, v := range f.stats.errors {
		switch {
		case k == Kind429RetryAfter || k == Kind503RetryAfter:
			s.Throttled += v
		case !expectedKind(k):
			s.Errors += v
		}
	}
	f.stats.mu.Unlock()
	return s
}

// randDuration is uniform in [0, d).
func (f *Fleet) randDuration(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

func (f *Fleet) wakeup() <-chan struct{} { return *f.wake.Load() }

// wakeAll interrupts every device's wait.
func (f *Fleet) wakeAll() {
	ch := make(chan struct{})
	old := f.wake.Swap(&ch)
	close(*old)
}

// lostOne records a device that could not be set up; the fleet is ready
// without it.
func (f *Fleet) lostOne() {
	if f.lostN.Add(1)+f.readyN.Load() >= int64(len(f.devices)) {
		f.readyOnce.Do(func() { close(f.ready) })
	}
}

func (f *Fleet) readyOne() {
	if f.readyN.Add(1)+f.lostN.Load() >= int64(len(f.devices)) {
		f.readyOnce.Do(func() { close(f.ready) })
	}
}

func (f *Fleet) eventDelivered(t deviceapi.EventType) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events[t]++
}

// maxErrorKinds bounds the distinct agent error messages kept.
const maxErrorKinds = 32

// agentError counts a failure outside HTTP (set-up, engine start) by a
// short description.
func (f *Fleet) agentError(what string, err error) {
	key := what + ": " + shorten(err.Error(), 100)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.agentErrs[key]; !ok && len(f.agentErrs) >= maxErrorKinds {
		key = what + ": (other)"
	}
	f.agentErrs[key]++
}

// pollFailed counts a failed poll. A poll during which a request failed
// is already in the transport's statistics; anything else is an agent
// error.
func (f *Fleet) pollFailed(err error, network bool) {
	f.mu.Lock()
	f.pollErrors++
	f.mu.Unlock()
	if network || errors.Is(err, errNoPower) {
		return
	}
	f.agentError("poll", err)
}

func shorten(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// learnTarget records a signed target's length, for the final check.
func (f *Fleet) learnTarget(sha string, length int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.targets[sha] = length
}

func (f *Fleet) targetLength(sha string) (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.targets[sha]
	return n, ok
}

// factoryImage is what every device runs at the start.
type factoryImage struct {
	image     []byte
	custom    trust.TargetCustom
	installed map[string]agent.Installed // shared read-only by every engine
}
