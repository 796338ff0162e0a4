package control_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/agenttest"
	"github.com/koshin-ota/koshin/agent/bundle"
	"github.com/koshin-ota/koshin/agent/control"
	"github.com/koshin-ota/koshin/agent/identity"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust/trusttest"
)

// modeServer is the rig's fake server with a rollout mode of the test's
// choosing (the fake always answers automatic).
type modeServer struct {
	*agenttest.Server
	mu   sync.Mutex
	mode deviceapi.Mode
}

func (m *modeServer) setMode(mode deviceapi.Mode) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mode = mode
}

func (m *modeServer) CheckIn(ctx context.Context, c deviceapi.CheckIn) (deviceapi.CheckInResponse, error) {
	resp, err := m.Server.CheckIn(ctx, c)
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(resp.Director) > 0 && m.mode != "" {
		resp.Mode = m.mode
	}
	return resp, err
}

// fixture is a simulated device running the engine and the control API on
// a real Unix socket, with the peer's credentials faked.
type fixture struct {
	t        *testing.T
	r        *agenttest.Rig
	srv      *modeServer
	fetch    *agenttest.Fetcher
	e        *agent.Engine
	api      *control.Server
	settings *control.Settings
	consent  *control.Consent
	nonces   *bundle.Nonces
	dir      string // control state
	socket   string
	ids      identity.Store
	dataDir  string
	dataKey  string
	wakes    int

	mu   sync.Mutex
	cred control.Cred
}

func newFixture(t *testing.T, seed uint64) *fixture {
	t.Helper()
	r := agenttest.NewRig(t, seed)
	root := t.TempDir()
	f := &fixture{t: t, r: r, srv: &modeServer{Server: r.Server}, dir: filepath.Join(root, "control"),
		ids: identity.Store{Dir: filepath.Join(root, "identity")}, dataDir: filepath.Join(root, "data"),
		dataKey: filepath.Join(root, "data.key")}
	f.fetch = &agenttest.Fetcher{F: trusttest.Mux{r.Img, r.Dir}, Link: r.Device.Inj}
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	state := agent.DirFS(f.dir)
	var err error
	if f.settings, err = control.OpenSettings(state); err != nil {
		t.Fatal(err)
	}
	if f.consent, err = control.OpenConsent(state, f.settings, r.Clock.Now, nil); err != nil {
		t.Fatal(err)
	}
	f.nonces = &bundle.Nonces{FS: state}
	r.Tweak = func(c *agent.Config) {
		c.Server, c.Fetcher = f.srv, f.fetch
		c.Approve, c.CurrentSettings = f.consent.Approve, f.settings.Get
		c.Lockouts = func() uint32 {
			if f.api == nil {
				return 0
			}
			return f.api.Lockouts()
		}
	}
	f.e = r.Boot()
	f.start()
	return f
}

// start creates the control API on the current engine and serves it.
func (f *fixture) start() {
	t := f.t
	id, err := f.ids.Generate()
	if err != nil {
		t.Fatal(err)
	}
	f.api, err = control.New(control.Config{
		Engine: f.e, Settings: f.settings, Consent: f.consent, Nonces: f.nonces,
		Bundles: &bundle.Installer{Engine: f.e, Device: f.r.Dev, TrustDir: f.r.Device.MetaDir,
			Nonces: f.nonces, Now: f.r.Clock.Now},
		StateDir: f.dir, TokenFile: filepath.Join(f.dir, "token"), WorkDir: filepath.Join(f.dir, "work"),
		AllowedUIDs: []uint32{1000}, AllowedGIDs: []uint32{500},
		Reset: control.ResetConfig{DataKeys: []string{f.dataKey}, DataDirs: []string{f.dataDir},
			Identity: f.ids, TrustDir: f.r.Device.MetaDir},
		Identity:   func() (string, bool) { return id.ID, false },
		HardwareID: agenttest.RigHardware,
		PeerCred:   f.peerCred,
		Wake:       func() { f.wakes++ },
		Now:        f.r.Clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	sockDir, err := os.MkdirTemp("", "kc") // short: socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	f.socket = filepath.Join(sockDir, "agent.sock")
	ln, err := control.Listen(f.socket, -1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	api := f.api // a later start replaces f.api while this one still serves
	go func() { api.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done; api.Close(); os.RemoveAll(sockDir) })
	f.setCred(control.Cred{UID: 0})
}

func (f *fixture) peerCred(net.Conn) (control.Cred, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cred, nil
}

func (f *fixture) setCred(c control.Cred) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cred = c
}

// client is a client with the right token.
func (f *fixture) client() *control.Client {
	f.t.Helper()
	tok, err := control.ReadToken(filepath.Join(f.dir, "token"))
	if err != nil {
		f.t.Fatal(err)
	}
	return control.NewClient(f.socket, tok)
}

// poll checks in once; reboot reports whether the engine armed a trial
// and asked for a reboot.
func (f *fixture) poll() (reboot bool) {
	f.t.Helper()
	ctx := context.Background()
	if err := f.api.Sync(ctx); err != nil {
		f.t.Fatal(err)
	}
	_, err := f.e.Poll(ctx)
	if errors.Is(err, agent.ErrReboot) {
		return true
	}
	if err != nil {
		f.t.Fatalf("poll: %v", err)
	}
	return false
}

func (f *fixture) status() control.Status {
	f.t.Helper()
	st, err := f.client().Status(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

func (f *fixture) events() []deviceapi.Event { return f.r.Server.Received() }

func (f *fixture) count(typ deviceapi.EventType) int { return f.r.Server.Count(typ) }

func wantCode(t *testing.T, err error, code int) {
	t.Helper()
	var ae *control.APIError
	if !errors.As(err, &ae) || ae.Code != code {
		t.Fatalf("error %v, want HTTP %d", err, code)
	}
}

// post sends a raw JSON body with the right token.
func (f *fixture) post(path, body string) error {
	c := f.client()
	req, err := http.NewRequest(http.MethodPost, "http://koshin-agent"+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &control.APIError{Code: resp.StatusCode, Message: resp.Status}
	}
	return nil
}
