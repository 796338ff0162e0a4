package ui_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/httpapi"
	"github.com/koshin-ota/koshin/password"
	"github.com/koshin-ota/koshin/pki"
	"github.com/koshin-ota/koshin/rollout"
	"github.com/koshin-ota/koshin/sqlite"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/koshin-ota/koshin/ui"
)

// cheapPassword keeps Argon2id fast in tests.
var cheapPassword = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

var fixtureStart = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// fixture is the UI mounted with the real management API on a SQLite
// store, served over TLS by httptest, with operators of each role.
type fixture struct {
	t     *testing.T
	clock *clock
	store *sqlite.DB
	srv   *httptest.Server
	ui    *ui.UI
	pw    map[string]string // operator → password
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	fx := &fixture{t: t, clock: &clock{t: fixtureStart}, pw: map[string]string{}}
	db := sqlite.NewDB(filepath.Join(dir, "koshin.db"))
	db.Now = fx.clock.Now
	must(t, db.Open(context.Background()))
	t.Cleanup(func() { db.Close() })
	fx.store = db
	authority, err := pki.Open(pki.Options{Dir: filepath.Join(dir, "pki"), Now: fx.clock.Now})
	must(t, err)
	root, err := keys.Generate(keys.Ed25519)
	must(t, err)
	targets, err := keys.Generate(keys.Ed25519)
	must(t, err)
	dirc, err := repo.InitDirector(filepath.Join(dir, "director"), fx.clock.Now(),
		repo.DirectorOptions{Channel: trust.ChannelRelease, RootKeys: []crypto.Signer{root}, Targets: targets})
	must(t, err)
	api := &httpapi.Server{Store: db, Rollouts: &rollout.Service{Store: db, Now: fx.clock.Now}, Director: dirc, PKI: authority,
		Config: httpapi.Config{Password: cheapPassword}, Now: fx.clock.Now}
	must(t, api.Init())
	apiH := api.ManagementHandler()
	u := &ui.UI{Store: db, API: apiH, Now: fx.clock.Now, Version: "koshin test", LiveInterval: 20 * time.Millisecond}
	must(t, u.Init())
	fx.ui = u
	fx.srv = httptest.NewTLSServer(ui.Mount(u, apiH))
	t.Cleanup(func() {
		u.Shutdown()
		fx.srv.Close()
	})
	for _, role := range []koshin.Role{koshin.RoleAdmin, koshin.RoleOperator, koshin.RoleViewer, koshin.RoleAuditor, koshin.RoleReleaseManager} {
		fx.operator(string(role)+"-1", role)
	}
	return fx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// operator creates an account with a random password.
func (fx *fixture) operator(name string, role koshin.Role) {
	pw := randomHex(12)
	h, err := cheapPassword.Hash(pw)
	must(fx.t, err)
	must(fx.t, fx.store.CreateOperator(context.Background(), &koshin.Operator{Name: name, Role: role, PasswordHash: h}))
	fx.pw[name] = pw
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	fx *fixture
	c  *http.Client
}

func (fx *fixture) browser() *browser {
	jar, _ := cookiejar.New(nil)
	c := *fx.srv.Client() // a copy: each browser has its own cookies
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{fx: fx, c: &c}
}

type page struct {
	Status   int
	Body     string
	Header   http.Header
	Location string
}

func (b *browser) do(req *http.Request) page {
	b.fx.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.fx.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{Status: resp.StatusCode, Body: string(body), Header: resp.Header, Location: resp.Header.Get("Location")}
}

func (b *browser) get(path string) page {
	b.fx.t.Helper()
	req, _ := http.NewRequest("GET", b.fx.srv.URL+path, nil)
	return b.do(req)
}

// post submits a form as a browser does from this site.
func (b *browser) post(path string, form url.Values) page {
	b.fx.t.Helper()
	req, _ := http.NewRequest("POST", b.fx.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.fx.srv.URL)
	return b.do(req)
}

var hiddenInput = regexp.MustCompile(`name="(csrf)" value="([0-9a-f]+)"`)

// formToken returns the CSRF token of the first form on the page.
func formToken(t *testing.T, p page) string {
	t.Helper()
	m := hiddenInput.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no CSRF token in page (%d): %.400s", p.Status, p.Body)
	}
	return m[2]
}

// signIn signs in through the form and returns the CSRF token of the
// session.
func (b *browser) signIn(name string) string {
	t := b.fx.t
	t.Helper()
	login := b.get("/ui/login")
	p := b.post("/ui/login", url.Values{"csrf": {formToken(t, login)}, "name": {name}, "password": {b.fx.pw[name]}})
	if p.Status != http.StatusSeeOther || p.Location != "/ui/" {
		t.Fatalf("sign-in as %s: %d %s %.300s", name, p.Status, p.Location, p.Body)
	}
	return formToken(t, b.get("/ui/"))
}

// enroll registers a device directly in the store with a reported
// inventory.
func (fx *fixture) enroll(serial, hw string, inv koshin.Inventory, tags ...string) *koshin.Device {
	fx.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(fx.t, err)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	d := &koshin.Device{ID: koshin.DeviceID(der), Serial: serial, HardwareID: hw, PublicKey: der, Tags: koshin.CleanTags(tags),
		Status: koshin.DeviceActive, CertSerial: "01", CertExpiresAt: fx.clock.Now().AddDate(1, 0, 0), EnrolledAt: fx.clock.Now()}
	ctx := context.Background()
	must(fx.t, fx.store.CreateDevice(ctx, d))
	_, err = fx.store.RecordDeviceReport(ctx, d.ID, inv, fx.clock.Now())
	must(fx.t, err)
	return d
}

func inventory(version string) koshin.Inventory {
	return koshin.Inventory{Components: []koshin.Component{{Name: "rootfs", Version: version, ReleaseCounter: 1}},
		Slot: koshin.SlotState{Active: "A", Healthy: true}, Settings: koshin.AgentSettings{UpdatesEnabled: true, Automatic: true},
		Security: koshin.SecurityState{BootIntegrity: koshin.BootVerified}}
}

// release imports a release straight into the store.
func (fx *fixture) release(name string, hw ...string) {
	fx.t.Helper()
	must(fx.t, fx.store.CreateRelease(context.Background(), &koshin.Release{Name: name, Length: 10,
		Hashes:      map[string]string{"sha256": strings.Repeat("ab", 32)},
		HardwareIDs: hw, Component: "rootfs", ReleaseCounter: 2, Version: "2.0", Channel: koshin.ChannelRelease}))
}
