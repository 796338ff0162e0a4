package agent

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"time"

	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
)

// Config wires an Engine. Every collaborator is explicit; time and
// randomness are injected so tests control them.
type Config struct {
	DeviceID   string
	HardwareID string
	// Signer is the device key; it signs every check-in report (SSS01).
	Signer crypto.Signer
	// DecryptionKey is the device's X25519 key to which the director wraps
	// content keys of encrypted releases; nil refuses encrypted releases.
	DecryptionKey *ecdh.PrivateKey

	Server     Server
	Verifier   Verifier
	Fetcher    Fetcher
	Bootloader Bootloader
	Slots      SlotSet
	// Installers maps a component name (signed in the target's custom
	// fields) to its handler.
	Installers map[string]Installer
	Health     HealthCheck
	Counter    Counter
	State      StateFS
	// LockFile, if set, is flocked for the engine's lifetime.
	LockFile string

	// Reboot asks the system to reboot; the engine returns ErrReboot after
	// it returned nil.
	Reboot func(ctx context.Context) error
	// Approve decides whether to install now. Nil installs automatically in
	// automatic and forced mode and never otherwise (consent and
	// download-only flows are driven by the local control API).
	Approve func(ctx context.Context, t Target, mode deviceapi.Mode) bool
	// Factory lists components installed at manufacture, reported until
	// the first commit of each.
	Factory  map[string]Installed
	Settings deviceapi.Settings
	// CurrentSettings, if set, is read at every check-in instead of
	// Settings, so that a change made through the local control API
	// reaches the next report without restarting the engine (CCDS
	// UPE05–UPE07).
	CurrentSettings func() deviceapi.Settings
	// Lockouts, if set, returns how many lockouts the local control API
	// imposed (CCDS STS13); reported in the security state (SSS01).
	Lockouts func() uint32
	// BootIntegrity returns the secure/measured-boot hook's verdict
	// ("verified", "unverified", "failed"); nil reports "unverified".
	// "failed" is an unauthorised change (see Integrity).
	BootIntegrity func() string
	// Integrity configures the detection of unauthorised changes and the
	// restriction that follows (EN 303 645 5.7-2).
	Integrity    IntegrityConfig
	AgentVersion string

	// CheckpointEvery is how many payload bytes pass at least between
	// durable checkpoints of a resumable download (default 4 MiB): smaller
	// loses less on a power cut, larger writes the journal less often.
	CheckpointEvery int64
	// CheckpointMinInterval is how much time passes at least between
	// checkpoints (default 1 s; negative: by bytes only). A checkpoint is
	// taken once both CheckpointEvery bytes and this interval have passed
	// since the last one: a power cut then costs at most about a second of
	// transfer (or CheckpointEvery bytes on a slow link) to redo, and a
	// fast local install does not fsync the slot and rewrite the journal
	// every CheckpointEvery bytes. Time is read from Now.
	CheckpointMinInterval time.Duration
	// FetchRetries is how many consecutive failed reconnects end a
	// download attempt (default 5); progress resets the count.
	FetchRetries int
	// RetryDelay is the pause before reconnect n (default 2^n s, ≤ 60 s).
	RetryDelay func(n int) time.Duration
	// ReadBackAttempts bounds downloads restarted after a failed read-back
	// (default 3).
	ReadBackAttempts int

	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	Rand  io.Reader
	Log   *slog.Logger
}

// Engine runs update transactions. Its methods are safe for concurrent use;
// they serialise on one lock (UPE10).
type Engine struct {
	cfg  Config
	lock *txLock
	j    *Journal // nil until loaded, and again after a failed write
	// integ is the integrity record: slot references and the alert.
	integ integrity
	// pendingReboot is set once Reboot was requested in this run.
	pendingReboot bool
	// signed is the last signed report, reused while nothing changed.
	signed *signed
}

// New checks cfg, fills defaults and takes the lock file.
func New(cfg Config) (*Engine, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	cfg.defaults()
	l, err := newTxLock(cfg.LockFile)
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, lock: l}
	// Read now, not with the journal: whether the engine is restricted
	// must be known before the first request of the local control API.
	if err := e.loadIntegrity(); err != nil {
		l.close()
		return nil, err
	}
	return e, nil
}

func (c *Config) check() error {
	if err := trust.ValidateID("device ID", c.DeviceID); err != nil {
		return err
	}
	if err := trust.ValidateID("hardware ID", c.HardwareID); err != nil {
		return err
	}
	switch {
	case c.Signer == nil, c.Server == nil, c.Verifier == nil, c.Fetcher == nil,
		c.Bootloader == nil, c.Slots == nil, c.Health == nil, c.Counter == nil,
		c.State == nil, c.Reboot == nil:
		return errors.New("agent: config needs Signer, Server, Verifier, Fetcher, Bootloader, Slots, Health, Counter, State and Reboot")
	case len(c.Installers) == 0:
		return errors.New("agent: config needs at least one installer")
	}
	return c.Integrity.check()
}

func (c *Config) defaults() {
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = 4 << 20
	}
	if c.CheckpointMinInterval == 0 {
		c.CheckpointMinInterval = time.Second
	}
	if c.FetchRetries <= 0 {
		c.FetchRetries = 5
	}
	if c.RetryDelay == nil {
		c.RetryDelay = func(n int) time.Duration { return min(time.Second<<min(n, 6), time.Minute) }
	}
	if c.ReadBackAttempts <= 0 {
		c.ReadBackAttempts = 3
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.BootIntegrity == nil {
		c.BootIntegrity = func() string { return "unverified" }
	}
	if c.Integrity.Sleep == nil {
		c.Integrity.Sleep = sleep
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close releases the lock file.
func (e *Engine) Close() error { return e.lock.close() }

// Exclusive runs fn while no update step or other security operation runs
// (CCDS UPE10); it waits for the running one or for ctx. The journal is
// loaded and resolved against the bootloader first if needed, so fn always
// sees a consistent state.
func (e *Engine) Exclusive(ctx context.Context, fn func() error) error {
	if err := e.lock.acquire(ctx); err != nil {
		return err
	}
	defer e.lock.release()
	if err := e.ensureLoaded(ctx); err != nil && !(errors.Is(err, ErrReboot) && e.j != nil) {
		return err
	}
	// With a reboot pending fn still runs (status, settings); Start and
	// Poll refuse work themselves.
	return fn()
}

// Start loads the journal and resolves it against the bootloader: it
// resumes, finishes or rolls back whatever a power cut interrupted. It
// returns ErrReboot if the resolution needs a reboot. Then it looks for
// unauthorised changes (boot-integrity hook, counter, trusted metadata,
// booted slot; the slot's content is CheckSlot's, which Run starts).
func (e *Engine) Start(ctx context.Context) error {
	return e.Exclusive(ctx, func() error {
		if err := e.rebootPending(); err != nil {
			return err
		}
		return e.inspect()
	})
}

func (e *Engine) rebootPending() error {
	if e.pendingReboot {
		return ErrReboot
	}
	return nil
}

func (e *Engine) ensureLoaded(ctx context.Context) error {
	if e.j != nil {
		return nil
	}
	if err := e.load(); err != nil {
		return err
	}
	if err := e.resolve(ctx); err != nil {
		if !errors.Is(err, ErrReboot) {
			// Resolve again next time rather than act on a half-resolved
			// state.
			e.j = nil
		}
		return err
	}
	return e.flush(ctx)
}

// Status is a snapshot for the local control API and tests.
type Status struct {
	Boot      BootState
	Tx        *Transaction
	Installed map[string]Installed
	Outbox    int
}

// Status returns the current state.
func (e *Engine) Status(ctx context.Context) (Status, error) {
	var s Status
	err := e.Exclusive(ctx, func() error {
		bs, err := e.cfg.Bootloader.State()
		if err != nil {
			return err
		}
		s = Status{Boot: bs, Installed: maps.Clone(e.j.Installed), Outbox: len(e.j.Outbox)}
		if e.j.Tx != nil {
			tx := *e.j.Tx
			s.Tx = &tx
		}
		return nil
	})
	return s, err
}

func (e *Engine) installer(t *Target) (Installer, error) {
	h, ok := e.cfg.Installers[t.Custom.Component]
	if !ok {
		return nil, fmt.Errorf("agent: no installer for component %q", t.Custom.Component)
	}
	return h, nil
}
