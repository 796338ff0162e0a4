package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/bundle"
	"github.com/koshin-ota/koshin/deviceapi"
)

// Config configures a Server. Settings, Consent and Nonces are shared
// with the engine's configuration (agent.Config.CurrentSettings, Approve)
// and keep their files in StateDir.
type Config struct {
	Engine   *agent.Engine
	Settings *Settings
	Consent  *Consent
	Nonces   *bundle.Nonces
	// Bundles installs offline bundles; nil refuses them.
	Bundles *bundle.Installer
	// StateDir holds the control API's own state (lockout count, reset
	// marker); TokenFile the bearer token (mode 0600).
	StateDir  string
	TokenFile string
	// AllowedUIDs and AllowedGIDs (the peer's primary group) may use the
	// API besides root.
	AllowedUIDs []uint32
	AllowedGIDs []uint32
	Lockout     LockoutPolicy
	Reset       ResetConfig
	// Identity returns the current device ID and whether it is enrolled.
	Identity      func() (id string, enrolled bool)
	HardwareID    string
	AgentVersion  string
	BootIntegrity func() string
	// WorkDir receives uploaded bundles (on a partition with room for
	// them); MaxBundle bounds their size (default 4 GiB).
	WorkDir   string
	MaxBundle int64
	// PeerCred reads a connection's peer credentials; nil means the
	// kernel's (SO_PEERCRED). Tests substitute a fake.
	PeerCred func(net.Conn) (Cred, error)
	// Wake, if set, makes the agent check in now (after an approval).
	Wake func()
	// OnReset, if set, is called after a factory reset was answered; the
	// agent restarts with its new identity.
	OnReset func(ResetResult)
	// StatusTimeout bounds how long status waits for a running update
	// step before answering from its last snapshot (default 2 s).
	StatusTimeout time.Duration
	Now           func() time.Time
	Log           *slog.Logger
}

// Cred is a peer's kernel-reported credentials.
type Cred struct {
	UID, GID uint32
	PID      int32
}

// Server is the local control API.
type Server struct {
	cfg   Config
	state agent.DirFS
	lock  *lockout
	rep   *reporter
	mux   *http.ServeMux

	mu    sync.Mutex
	token string
	last  *Status // last status with engine fields, for busy answers
}

const (
	lockoutFile        = "lockouts.json"
	defaultMaxBundle   = 4 << 30
	maxJSONBody        = 64 << 10
	defaultStatusWait  = 2 * time.Second
	readHeaderDeadline = 10 * time.Second
)

// New checks cfg, loads or creates the token and starts the reporter that
// hands events to the engine. Close stops it.
func New(cfg Config) (*Server, error) {
	if cfg.Engine == nil || cfg.Settings == nil || cfg.Consent == nil || cfg.Nonces == nil || cfg.StateDir == "" || cfg.TokenFile == "" {
		return nil, errors.New("control: config needs Engine, Settings, Consent, Nonces, StateDir and TokenFile")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.PeerCred == nil {
		cfg.PeerCred = PeerCred
	}
	if cfg.MaxBundle <= 0 {
		cfg.MaxBundle = defaultMaxBundle
	}
	if cfg.StatusTimeout <= 0 {
		cfg.StatusTimeout = defaultStatusWait
	}
	if cfg.Identity == nil {
		cfg.Identity = func() (string, bool) { return "", false }
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	tok, err := LoadOrCreateToken(cfg.TokenFile)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, state: agent.DirFS(cfg.StateDir), token: tok}
	s.lock = newLockout(cfg.Lockout, cfg.Now, s.loadLockouts())
	s.rep = newReporter(cfg.Engine, cfg.Log)
	s.routes()
	return s, nil
}

// Close stops the reporter; events not yet handed to the engine are lost
// (the settings themselves are persisted and reported at every check-in).
func (s *Server) Close() error {
	s.rep.stop()
	return nil
}

// Lockouts returns how many lockouts the API imposed, for the engine's
// reports (agent.Config.Lockouts).
func (s *Server) Lockouts() uint32 { return s.lock.lockouts() }

// Sync waits until every event the API produced has been handed to the
// engine (tests, and before a restart).
func (s *Server) Sync(ctx context.Context) error { return s.rep.drain(ctx) }

func (s *Server) currentToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

// Listen creates the Unix socket at path, mode 0660 and, with gid ≥ 0,
// owned by that group. A stale socket left by a previous run is replaced;
// any other file at path is refused. A missing parent directory is created
// with mode 0750 (and the group, so its members can reach the socket), so
// the socket is never reachable with looser permissions in between; an
// existing one is left as the integrator made it.
func Listen(path string, gid int) (net.Listener, error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("control socket: %w", err)
		}
		if gid >= 0 {
			if err := os.Chown(dir, -1, gid); err != nil {
				return nil, fmt.Errorf("control socket: %w", err)
			}
		}
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("control socket: %s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("control socket: %w", err)
		}
	}
	return ln, nil
}

type credKey struct{}

type credResult struct {
	cred Cred
	err  error
}

// Serve answers requests on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderDeadline,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.Log.Handler(), slog.LevelDebug),
		// Credentials are read once per connection: they are the peer's
		// at connect time, which is what SO_PEERCRED reports anyway.
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			cred, err := s.cfg.PeerCred(c)
			return context.WithValue(ctx, credKey{}, credResult{cred, err})
		},
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	return ctx.Err()
}

// Handler is the API with authentication, for Serve and tests.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.authenticate) }

type handler func(w http.ResponseWriter, r *http.Request, c Cred) error

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	for pattern, h := range map[string]handler{
		"GET /v1/status":             s.status,
		"POST /v1/update/approve":    s.unrestricted(s.approve),
		"POST /v1/update/postpone":   s.unrestricted(s.postpone),
		"POST /v1/update/decline":    s.unrestricted(s.decline),
		"GET /v1/settings":           s.getSettings,
		"PATCH /v1/settings":         s.unrestricted(s.patchSettings),
		"POST /v1/settings/defaults": s.unrestricted(s.restoreDefaults),
		"POST /v1/reset":             s.reset,
		"POST /v1/install":           s.unrestricted(s.install),
		"POST /v1/alert/clear":       s.clearAlert,
	} {
		s.mux.Handle(pattern, s.wrap(h))
	}
}

func (s *Server) wrap(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(credKey{}).(Cred)
		if err := h(w, r, c); err != nil {
			s.writeError(w, err)
		}
	})
}

// apiError is an error with its status code and a message for the caller.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &apiError{code, fmt.Sprintf(format, args...)}
}

// writeError maps errors to status codes, the one place that does.
func (s *Server) writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		code = ae.code
	case errors.Is(err, ErrNoPending), errors.Is(err, ErrForced), errors.Is(err, agent.ErrInProgress),
		errors.Is(err, agent.ErrNothingToInstall), errors.Is(err, agent.ErrReboot),
		errors.Is(err, agent.ErrRestricted), errors.Is(err, agent.ErrNoAlert):
		code = http.StatusConflict
	case errors.Is(err, ErrBadPostpone):
		code = http.StatusBadRequest
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		code = http.StatusServiceUnavailable
	}
	if code == http.StatusInternalServerError {
		s.cfg.Log.Error("control API", "err", err)
	}
	writeJSON(w, code, ErrorBody{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// decodeJSON reads a bounded JSON body of known fields into v; an empty
// body leaves v as it is.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err != nil {
		return errorf(http.StatusBadRequest, "request body: %v", err)
	}
	if len(body) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		return errorf(http.StatusBadRequest, "request body is not a JSON object of known fields")
	}
	return nil
}

// report queues an event for the server without blocking the request on
// a running update step.
func (s *Server) report(typ deviceapi.EventType, target, reason, detail string) {
	s.rep.add(deviceapi.Event{Type: typ, Target: target, Reason: reason, Detail: detail})
}
