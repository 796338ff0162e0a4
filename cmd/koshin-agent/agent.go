package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/bundle"
	"github.com/koshin-ota/koshin/agent/control"
	"github.com/koshin-ota/koshin/agent/deviceclient"
	"github.com/koshin-ota/koshin/agent/identity"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/internal/atomicfile"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/verify"
)

// Layout of the state directory.
const (
	engineDir   = "agent"
	trustDir    = "trust"
	identityDir = "identity"
	controlDir  = "control"
	workDir     = "work"
	lockFile    = "agent.lock"
)

// errRestart asks main to open the agent again: a factory reset rotated
// the identity, or the device enrolled.
var errRestart = errors.New("restart with the new identity")

// Agent is the running daemon: engine, local control API and their
// wiring, built from a Config (the program as a type, so tests start the
// real thing in a temporary directory).
type Agent struct {
	cfg     *Config
	log     *slog.Logger
	now     func() time.Time
	id      *identity.Identity
	engine  *agent.Engine
	control *control.Server
	renewer *deviceclient.Renewer
	waker   *waker
	reset   chan struct{} // restart: identity rotated or enrolled

	// notifier runs control.notify_command: pending updates, alerts.
	notifier *control.Notifier
	boot     bootCheck
	// closeCounter releases the counter's TPM connection (nil for the
	// file counter).
	closeCounter func() error
}

// dir returns a path in the state directory.
func (c *Config) dir(name string) string { return filepath.Join(c.StateDir, name) }

// OpenAgent builds the agent. The device needs an identity key (koshin-agent
// enroll) and provisioned trusted roots; it does not need a certificate:
// an unenrolled device (after a factory reset) works locally.
func OpenAgent(cfg *Config, log *slog.Logger, now func() time.Time) (*Agent, error) {
	for _, d := range []string{cfg.StateDir, cfg.dir(engineDir), cfg.dir(controlDir), cfg.dir(workDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	id, err := identity.Store{Dir: cfg.dir(identityDir)}.Load()
	if errors.Is(err, identity.ErrNoKey) {
		return nil, fmt.Errorf("this device has no identity yet: run koshin-agent enroll")
	}
	if err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, log: log, now: now, id: id, waker: newWaker(), reset: make(chan struct{}, 1)}
	ecfg, err := a.engineConfig()
	if err != nil {
		return nil, err
	}
	settings, consent, nonces, err := a.controlState()
	if err != nil {
		a.closeTPM()
		return nil, err
	}
	ecfg.Approve, ecfg.CurrentSettings, ecfg.Settings = consent.Approve, settings.Get, settings.Get()
	ecfg.Integrity.OnAlert = a.notifier.Alert
	ecfg.Lockouts = func() uint32 { return a.control.Lockouts() }
	if a.engine, err = agent.New(ecfg); err != nil {
		a.closeTPM()
		return nil, err
	}
	if a.control, err = a.controlServer(settings, consent, nonces, ecfg.Factory); err != nil {
		a.engine.Close()
		a.closeTPM()
		return nil, err
	}
	return a, nil
}

// Close releases the engine's lock, stops the control API's reporter and
// closes the TPM.
func (a *Agent) Close() error {
	a.control.Close()
	err := a.engine.Close()
	a.closeTPM()
	return err
}

func (a *Agent) closeTPM() {
	if a.closeCounter != nil {
		a.closeCounter()
		a.closeCounter = nil
	}
}

// engineConfig wires everything the engine drives.
func (a *Agent) engineConfig() (agent.Config, error) {
	cfg := a.cfg
	var ec agent.Config
	server, fetcher, err := a.network()
	if err != nil {
		return ec, err
	}
	v, err := a.verifier(fetcher)
	if err != nil {
		return ec, err
	}
	bl, slots, err := a.bootloader()
	if err != nil {
		return ec, err
	}
	installers, err := a.installers(slots)
	if err != nil {
		return ec, err
	}
	factory, err := readFactory(cfg.Factory)
	if err != nil {
		return ec, err
	}
	counterKey, err := loadOrCreateKey(cfg.CounterKey)
	if err != nil {
		return ec, err
	}
	state := agent.DirFS(cfg.dir(engineDir))
	counter, closeCounter, err := a.counter(state, counterKey, factory)
	if err != nil {
		return ec, err
	}
	a.closeCounter = closeCounter
	return agent.Config{
		DeviceID: a.id.ID, HardwareID: cfg.HardwareID, Signer: a.id.Key, DecryptionKey: a.id.Encryption,
		Server: server, Fetcher: fetcher,
		Verifier:   v,
		Bootloader: bl, Slots: slots, Installers: installers,
		Health:          agent.DirHealthCheck{Dir: cfg.Health.Dir, Timeout: time.Duration(cfg.Health.Timeout)},
		Counter:         counter,
		State:           state,
		LockFile:        cfg.dir(lockFile),
		Reboot:          a.rebootCommand,
		Factory:         factory,
		AgentVersion:    Version,
		BootIntegrity:   a.bootIntegrity,
		Integrity:       a.integrity(fetcher, counterKey),
		CheckpointEvery: cfg.Poll.CheckpointEvery,
		Now:             a.now,
		Sleep:           a.waker.sleep,
		Log:             a.log,

		CheckpointMinInterval: cfg.Poll.checkpointMinInterval(),
	}, nil
}

// network builds the device API client over mutual TLS, or a stand-in
// that fails every call when the device is not enrolled.
func (a *Agent) network() (agent.Server, *verify.HTTPFetcher, error) {
	cert := deviceclient.NewCertificate(a.id)
	tlsConfig := deviceclient.TLSConfig(a.id.ServerCA, cert)
	hc := verify.NewHTTPClient(tlsConfig)
	// Downloads may be redirected to a bucket or CDN with a public
	// certificate; the download client verifies those hosts against the
	// system roots and shows them no device certificate.
	dc := hc
	if a.cfg.Server != "" {
		var err error
		if dc, err = deviceclient.DownloadClient(a.cfg.Server, tlsConfig, nil); err != nil {
			return nil, nil, err
		}
	}
	fetcher := &verify.HTTPFetcher{Client: dc, MinRate: a.cfg.Poll.MinRate, Window: time.Duration(a.cfg.Poll.Window),
		UserAgent: "koshin-agent/" + Version}
	if !a.id.Enrolled() {
		a.log.Warn("device not enrolled: working locally until koshin-agent enroll", "device", a.id.ID)
		return deviceclient.NotEnrolled{}, fetcher, nil
	}
	c := deviceapi.NewClient(a.cfg.Server, hc)
	// The engine backs off between polls itself (with full jitter and the
	// server's Retry-After); retrying inside one poll as well would hold
	// the engine's lock through the waits.
	c.Attempts = 1
	a.renewer = &deviceclient.Renewer{Store: identity.Store{Dir: a.cfg.dir(identityDir)}, ID: a.id,
		Client: deviceapi.NewClient(a.cfg.Server, hc), Cert: cert, Before: time.Duration(a.cfg.CertRenewBefore), Now: a.now}
	return &deviceclient.Server{Client: c}, fetcher, nil
}

// verifier opens the trust core on the provisioned roots. Roots that are
// there but no longer verify are an unauthorised change, not a reason to
// stop: the agent starts with a verifier that refuses everything, and the
// integrity check (IntegrityConfig.Trusted) raises the alert.
func (a *Agent) verifier(f verify.Fetcher) (agent.Verifier, error) {
	v, err := verify.New(a.verifyConfig(f))
	switch {
	case err == nil:
		return &agent.TrustVerifier{V: v, Watchdog: verify.PayloadOptions{MinRate: a.cfg.Poll.MinRate, Window: time.Duration(a.cfg.Poll.Window)}}, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("trusted roots (koshin-agent enroll --image-root --director-root provisions them): %w", err)
	}
	a.log.Error("trusted metadata does not verify; no update can install", "err", err)
	return refusingVerifier{err}, nil
}

func (a *Agent) verifyConfig(f verify.Fetcher) verify.Config {
	img, dir, targets := deviceclient.URLs(a.cfg.Server)
	return verify.Config{Device: a.device(), Dir: a.cfg.dir(trustDir),
		ImageURL: img, DirectorURL: dir, TargetsURL: targets, Fetcher: f, Now: a.now, Logger: a.log}
}

func (a *Agent) device() trust.Device {
	return trust.Device{ID: a.id.ID, HardwareID: a.cfg.HardwareID, Channel: a.cfg.Channel}
}

// controlState opens the settings, update decisions and offline nonce.
func (a *Agent) controlState() (*control.Settings, *control.Consent, *bundle.Nonces, error) {
	fsys := agent.DirFS(a.cfg.dir(controlDir))
	settings, err := control.OpenSettings(fsys)
	if err != nil {
		a.log.Error("update settings", "err", err)
	}
	consent, err := control.OpenConsent(fsys, settings, a.now, a.log)
	if err != nil {
		a.log.Error("update decisions", "err", err)
	}
	if d := a.cfg.Control.MaxPostpone; d > 0 {
		consent.MaxPostpone = time.Duration(d)
	}
	a.notifier = &control.Notifier{Command: a.cfg.Control.NotifyCommand, Settings: settings, Log: a.log}
	consent.OnPending = a.notifier.Pending
	return settings, consent, &bundle.Nonces{FS: fsys}, nil
}

func (a *Agent) controlServer(settings *control.Settings, consent *control.Consent, nonces *bundle.Nonces, factory map[string]agent.Installed) (*control.Server, error) {
	cc := a.cfg.Control
	return control.New(control.Config{
		Engine: a.engine, Settings: settings, Consent: consent, Nonces: nonces, BootIntegrity: a.bootIntegrity,
		Bundles: &bundle.Installer{Engine: a.engine, Device: a.device(), TrustDir: a.cfg.dir(trustDir),
			Nonces: nonces, Now: a.now, Log: a.log},
		StateDir: a.cfg.dir(controlDir), TokenFile: cc.TokenFile,
		AllowedUIDs: cc.AllowedUIDs, AllowedGIDs: cc.AllowedGIDs,
		Lockout: control.LockoutPolicy{MaxFailures: cc.MaxFailures, Base: time.Duration(cc.LockoutBase), Max: time.Duration(cc.LockoutMax)},
		Reset: control.ResetConfig{DataKeys: a.cfg.Reset.DataKeys, Commands: a.cfg.Reset.Commands, DataDirs: a.cfg.Reset.DataDirs,
			Identity: identity.Store{Dir: a.cfg.dir(identityDir)}, TrustDir: a.cfg.dir(trustDir)},
		Identity:     func() (string, bool) { return a.id.ID, a.id.Enrolled() },
		HardwareID:   a.cfg.HardwareID,
		AgentVersion: Version,
		WorkDir:      a.cfg.dir(workDir),
		MaxBundle:    cc.MaxBundle,
		Wake:         a.waker.wake,
		OnReset:      func(control.ResetResult) { a.restart() },
		Now:          a.now,
		Log:          a.log,
	})
}

// rebootCommand runs the configured reboot command (default systemctl
// reboot); the engine then stops starting work until the system is down.
func (a *Agent) rebootCommand(ctx context.Context) error {
	argv := a.cfg.RebootCommand
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %.200s", argv[0], err, out)
	}
	return nil
}

// readFactory reads the factory-installed components (may be absent).
func readFactory(path string) (map[string]agent.Installed, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("factory: %w", err)
	}
	var m map[string]agent.Installed
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("factory %s: %w", path, err)
	}
	for name, in := range m {
		if err := trust.ValidateID("component", name); err != nil || len(in.Version) > 128 {
			return nil, fmt.Errorf("factory %s: component %q malformed", path, name)
		}
	}
	return m, nil
}

// loadOrCreateKey reads a 32-byte key file, generating it at first start
// (mode 0600).
func loadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != 32 {
			return nil, fmt.Errorf("%s: want 32 bytes, have %d", path, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	return b, atomicfile.WriteFile(path, b, 0o600)
}

// socketGroup resolves control.socket_group to a GID (-1: unchanged).
func socketGroup(name string) (int, error) {
	if name == "" {
		return -1, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return -1, fmt.Errorf("control.socket_group: %w", err)
	}
	return strconv.Atoi(g.Gid)
}

// restart makes Run return errRestart (once; later requests are no-ops).
func (a *Agent) restart() {
	select {
	case a.reset <- struct{}{}:
	default:
	}
}
