package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/anomaly"
	"github.com/koshin-ota/koshin/fleetfacts"
	"github.com/koshin-ota/koshin/httpapi"
	"github.com/koshin-ota/koshin/password"
	"github.com/koshin-ota/koshin/pki"
	"github.com/koshin-ota/koshin/rollout"
	"github.com/koshin-ota/koshin/tlslimit"
	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/koshin-ota/koshin/ui"
	"github.com/koshin-ota/koshin/webhook"
)

// ServerMain is `koshin server` as a type: Run opens everything and starts
// serving in the background, Close stops it. An end-to-end test runs the
// real server this way on 127.0.0.1:0 in a temporary directory. This is
// the only place that chooses the storage (Config.Store: SQLite in the data
// directory, or PostgreSQL shared by replicas; server_store.go).
type ServerMain struct {
	Config     ServerConfig
	Now        func() time.Time
	Log        *slog.Logger
	Passphrase keys.PassphraseFunc
	// ManualEngine leaves rollout engine and anomaly detector ticks to the
	// caller (tests drive Engine.Tick and Anomaly.Tick with their clock);
	// otherwise the engine runs every Config.EngineInterval and the
	// detector every minute.
	ManualEngine bool
	// Password overrides the Argon2id cost of new password hashes (tests).
	Password password.Params

	Store    koshin.Store
	PKI      *pki.Authority
	Director *repo.Director
	Rollouts *rollout.Service
	Engine   *rollout.Engine
	Outbox   *rollout.Outbox
	API      *httpapi.Server
	// UI is the web UI, served under /ui/ on the management listener.
	UI *ui.UI
	// Fleet observes the fleet for compliance reports; Anomaly watches
	// its telemetry (server_compliance.go).
	Fleet   *fleetfacts.Fleet
	Anomaly *anomaly.Detector

	uiAPI              http.Handler // the management API the UI calls in-process
	deviceLn, mgmtLn   net.Listener
	deviceSrv, mgmtSrv *http.Server
	cancel             context.CancelFunc
	wg                 sync.WaitGroup
}

// Data-directory layout.
const (
	dbFile = "koshin.db"
	pkiDir = "pki"
)

// Run opens the store, PKI, director and listeners, and starts serving and
// the background jobs. It returns once the server is listening.
func (m *ServerMain) Run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if err := m.Config.resolve(); err != nil {
		return err
	}
	if m.Now == nil {
		m.Now = time.Now
	}
	if m.Log == nil {
		m.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(m.Config.DataDir, 0o700); err != nil {
		return err
	}
	if err := m.openStore(ctx); err != nil {
		return err
	}
	if err := m.openTrust(); err != nil {
		return err
	}
	root1, err := m.Director.RootVersion(1)
	if err != nil {
		return fmt.Errorf("director root 1: %w", err)
	}
	if err := claimKeys(ctx, m.Store, m.PKI, root1); err != nil {
		return err
	}
	if err := m.openAPI(); err != nil {
		return err
	}
	if err := m.listen(); err != nil {
		return err
	}
	m.start()
	return nil
}

func (m *ServerMain) openStore(ctx context.Context) error {
	st, err := openStore(ctx, &m.Config, m.Now, m.Log)
	if err != nil {
		return err
	}
	m.Store = st
	return nil
}

func (m *ServerMain) openTrust() error {
	c := &m.Config
	var err error
	m.PKI, err = pki.Open(pki.Options{
		Dir: filepath.Join(c.DataDir, pkiDir), Hosts: c.Hosts, CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile,
		CAFile: c.TLS.CAFile, DeviceValidity: c.DeviceCertValidity, Now: m.Now, Log: m.Log,
	})
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(c.Dir.Dir, "director.json")); err != nil {
		return fmt.Errorf("no director in %s: run `koshin server init` first", c.Dir.Dir)
	}
	signer, err := keys.Open(c.Dir.Key, m.Passphrase)
	if err != nil {
		return fmt.Errorf("director key: %w", err)
	}
	if m.Director, err = repo.OpenDirector(c.Dir.Dir, signer); err != nil {
		return err
	}
	return nil
}

func (m *ServerMain) openAPI() error {
	c := &m.Config
	nf, err := m.notifier()
	if err != nil {
		return err
	}
	m.Outbox = &rollout.Outbox{Notifier: nf, Now: m.Now, Log: m.Log}
	m.Rollouts = &rollout.Service{Store: m.Store, Notifier: m.Outbox, Now: m.Now, Log: m.Log}
	m.Engine = &rollout.Engine{Store: m.Store, Notifier: m.Outbox, Now: m.Now, Log: m.Log}
	cfg := c.apiConfig()
	cfg.Password = m.Password
	m.API = &httpapi.Server{Store: m.Store, Rollouts: m.Rollouts, Director: m.Director, PKI: m.PKI,
		Config: cfg, Log: m.Log, Now: m.Now}
	img, err := openImageRepo(context.Background(), c, m.Log)
	if err != nil {
		return err
	}
	if img != nil {
		if c.Image.TrustedRoot != "" {
			root, err := os.ReadFile(c.Image.TrustedRoot)
			if err != nil {
				return fmt.Errorf("image trusted root: %w", err)
			}
			img.TrustedRoot = root
		}
		m.API.Image = img
	}
	if c.ContentKeysDir != "" {
		m.API.ContentKeys = httpapi.KeyDir(c.ContentKeysDir)
	}
	if err := m.API.Init(); err != nil {
		return err
	}
	if err := m.openCompliance(); err != nil {
		return err
	}
	return m.openUI()
}

// listen opens both listeners so that their addresses are known (":0")
// when Run returns.
func (m *ServerMain) listen() error {
	var err error
	if m.deviceLn, err = net.Listen("tcp", m.Config.DeviceListen); err != nil {
		return fmt.Errorf("device API: %w", err)
	}
	if m.mgmtLn, err = net.Listen("tcp", m.Config.ManagementListen); err != nil {
		return fmt.Errorf("management API: %w", err)
	}
	// The device listener runs the TLS handshakes itself, at most
	// limits.max_handshakes at a time (tlslimit), so that a reconnect storm
	// waits in the accept backlog instead of timing out mid-handshake. The
	// ALPN list is set here because the server is given a listener of
	// finished TLS connections (Serve, not ServeTLS): it offers HTTP/2 as
	// ServeTLS would.
	deviceTLS := m.PKI.DeviceTLSConfig()
	deviceTLS.NextProtos = []string{"h2", "http/1.1"}
	limited, err := tlslimit.NewListener(m.deviceLn, deviceTLS, m.Config.Limits.handshakeConfig())
	if err != nil {
		return fmt.Errorf("device API: %w", err)
	}
	m.deviceLn = limited
	if err := m.API.Metrics.Registry.Register(limited.Collector()); err != nil {
		return fmt.Errorf("device API metrics: %w", err)
	}
	m.deviceSrv = m.httpServer(m.API.DeviceHandler(), deviceTLS)
	m.mgmtSrv = m.httpServer(ui.Mount(m.UI, m.uiAPI), m.PKI.ManagementTLSConfig())
	m.mgmtSrv.RegisterOnShutdown(m.UI.Shutdown)
	return nil
}

// httpServer bounds what a slow or hostile client can hold: header and
// body read time, header size, idle keep-alive. Writes are not bounded by
// a timeout because payload downloads are long; the admission limit caps
// how many run at once.
func (m *ServerMain) httpServer(h http.Handler, tc *tls.Config) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tc,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		// TLS handshake failures (probes, refused certificates) are
		// routine on an Internet-facing port; keep them out of the error log.
		ErrorLog: log.New(io.Discard, "", 0),
	}
}

func (m *ServerMain) start() {
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.goServe(m.deviceSrv, m.deviceLn, false)
	m.goServe(m.mgmtSrv, m.mgmtLn, true)
	m.goLoop(func() { m.Outbox.Run(ctx, time.Minute) })
	// Check-ins that change nothing but the time are written once a second.
	m.goLoop(func() { m.API.RunSightings(ctx, time.Second) })
	if !m.ManualEngine {
		m.goLoop(func() {
			m.exclusive(ctx, "rollout-engine", func(ctx context.Context) error { return m.Engine.Run(ctx, m.Config.EngineInterval) })
		})
		m.goLoop(func() { m.exclusive(ctx, "anomaly-detector", m.Anomaly.Run) })
	}
	m.goLoop(func() { m.renewCertificates(ctx) })
	m.Log.Info("koshin server started", "device_api", m.deviceLn.Addr().String(),
		"management_api", m.mgmtLn.Addr().String(), "web_ui", m.UIURL(), "server_ca_sha256", m.PKI.ServerCAFingerprint())
}

// goServe serves ln; handshake means ln is a raw listener whose TLS
// handshakes s runs (ServeTLS), otherwise ln returns finished TLS
// connections.
func (m *ServerMain) goServe(s *http.Server, ln net.Listener, handshake bool) {
	m.goLoop(func() {
		serve := s.Serve
		if handshake {
			serve = func(ln net.Listener) error { return s.ServeTLS(ln, "", "") }
		}
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Log.Error("server stopped", "addr", ln.Addr().String(), "err", err)
		}
	})
}

func (m *ServerMain) goLoop(fn func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		fn()
	}()
}

// renewCertificates renews the server certificate daily when it nears
// expiry; new connections pick it up without a restart.
func (m *ServerMain) renewCertificates(ctx context.Context) {
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.PKI.RenewServer(); err != nil {
				m.Log.Error("server certificate renewal failed", "err", err)
			}
		}
	}
}

// Close stops serving (in-flight requests get a grace period), stops the
// background jobs and closes the store.
func (m *ServerMain) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range []*http.Server{m.deviceSrv, m.mgmtSrv} {
		if s != nil {
			s.Shutdown(ctx)
		}
	}
	for _, ln := range []net.Listener{m.deviceLn, m.mgmtLn} {
		if ln != nil {
			ln.Close()
		}
	}
	if m.cancel != nil {
		m.cancel()
	}
	m.wg.Wait()
	if m.Store != nil {
		return m.Store.Close()
	}
	return nil
}

// DeviceURL and ManagementURL are the base URLs of the running APIs.
func (m *ServerMain) DeviceURL() string     { return "https://" + m.deviceLn.Addr().String() }
func (m *ServerMain) ManagementURL() string { return "https://" + m.mgmtLn.Addr().String() }

// notifier is the configured webhook, or the log.
func (m *ServerMain) notifier() (rollout.Notifier, error) {
	w := m.Config.Webhook
	if w.URL == "" {
		return logNotifier{m.Log}, nil
	}
	secret, err := os.ReadFile(w.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("webhook secret: %w", err)
	}
	n := &webhook.Notifier{URL: w.URL, Secret: bytes.TrimSpace(secret), Now: m.Now}
	if err := n.Validate(); err != nil {
		return nil, err
	}
	return n, nil
}

// logNotifier writes rollout notifications (failed installs, halts) to the
// log; a webhook receiver replaces it where one is configured.
type logNotifier struct{ log *slog.Logger }

func (n logNotifier) Notify(_ context.Context, nt rollout.Notification) error {
	n.log.Warn("rollout notification", "kind", nt.Kind, "rollout", nt.RolloutID, "phase", nt.Phase,
		"device", nt.DeviceID, "release", nt.ReleaseName, "count", nt.Count, "reason", nt.Reason)
	return nil
}
