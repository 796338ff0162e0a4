package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/password"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/encryption"
	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/koshin-ota/koshin/trust/repo"
)

// e2eStart is the fixture's fixed starting time; every clock in the test
// (server, store, TLS on both sides, metadata expiry) is the fake clock.
var e2eStart = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// fakeClock is a thread-safe settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// cheapPassword keeps Argon2id fast in tests.
var cheapPassword = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// e2e is a running server with a published image repository, the way an
// installation looks after `koshin server init`, `koshin repo …` and
// `koshin server`.
type e2e struct {
	t         *testing.T
	clock     *fakeClock
	dir       string
	published string
	srv       *ServerMain
	caPool    *x509.CertPool
	adminPW   string
	releases  []string
	signers   map[string]crypto.Signer // image repository keys by role
	keys      map[string][]byte        // content keys of encrypted releases
}

// e2eRelease describes one target of the fixture's image repository.
type e2eRelease struct {
	name      string
	hw        []string
	counter   uint64
	encrypted bool
}

// e2eOpts vary the fixture.
type e2eOpts struct {
	// config adjusts the server configuration before the first start.
	config func(*ServerConfig)
	// noAdmin leaves the installation as the first start does: no account.
	noAdmin bool
	// before runs after the image repository is published, before the
	// server is initialised.
	before func(*e2e)
}

// newE2E builds the image repository, prepares the data directory with
// the real init command, starts the real server on 127.0.0.1:0 and
// (unless opts.noAdmin) creates an administrator with a random password,
// the way `koshin admin create` does.
func newE2E(t *testing.T, opts e2eOpts, rels ...e2eRelease) *e2e {
	t.Helper()
	e := &e2e{t: t, clock: &fakeClock{t: e2eStart}, dir: t.TempDir()}
	e.published = filepath.Join(e.dir, "published")
	e.publish(rels)
	if opts.before != nil {
		opts.before(e)
	}
	pass := []byte(hex.EncodeToString(randomBytes(16)))
	m := &Main{Stdout: io.Discard, Stderr: io.Discard, Now: e.clock.Now,
		Passphrase: func(string) ([]byte, error) { return bytes.Clone(pass), nil },
		KDF:        keys.KDFParams{Time: 1, MemoryKiB: 8 << 10, Threads: 1}}
	cfg := defaultServerConfig()
	cfg.DataDir = filepath.Join(e.dir, "data")
	cfg.DeviceListen, cfg.ManagementListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Image.Dir = e.published
	cfg.ContentKeysDir = filepath.Join(e.dir, "imagerepo", "content-keys")
	if opts.config != nil {
		opts.config(&cfg)
	}
	if err := m.initServer(context.Background(), cfg, trust.ChannelRelease, ""); err != nil {
		t.Fatal(err)
	}
	e.srv = &ServerMain{Config: cfg, Now: e.clock.Now, Passphrase: m.Passphrase, ManualEngine: true, Password: cheapPassword,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := e.srv.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.srv.Close() })
	e.caPool = e.srv.PKI.ServerPool()
	if opts.noAdmin {
		return e
	}
	e.adminPW = hex.EncodeToString(randomBytes(12))
	if err := createOperator(context.Background(), e.srv.Store, "root-admin", koshin.RoleAdmin, e.adminPW, cheapPassword); err != nil {
		t.Fatal(err)
	}
	return e
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// publish creates an image repository with one key per role, adds rels
// and publishes it.
func (e *e2e) publish(rels []e2eRelease) {
	t := e.t
	r, err := repo.Init(filepath.Join(e.dir, "imagerepo"), repo.InitOptions{Channel: trust.ChannelRelease, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.signers, e.keys = map[string]crypto.Signer{}, map[string][]byte{}
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		s, err := keys.Generate(keys.Ed25519)
		if err != nil {
			t.Fatal(err)
		}
		e.signers[role] = s
		if err := r.AddKey(role, s.Public(), ""); err != nil {
			t.Fatal(err)
		}
	}
	mustDo(t, r.Sign("root", e.signers["root"]))
	for _, rel := range rels {
		e.addTarget(r, rel)
	}
	e.commit(r)
}

// addTarget adds rel's payload, encrypted under a new content key (written
// where `koshin release add --encrypt` writes it) if rel.encrypted.
func (e *e2e) addTarget(r *repo.Repo, rel e2eRelease) {
	t := e.t
	c := trust.TargetCustom{HardwareIDs: rel.hw, Component: "rootfs", ReleaseCounter: rel.counter, Version: rel.name, Channel: trust.ChannelRelease}
	payload := []byte("payload of " + rel.name)
	if rel.encrypted {
		key, err := encryption.NewContentKey()
		mustDo(t, err)
		var ct bytes.Buffer
		res, err := encryption.Encrypt(&ct, bytes.NewReader(payload), key)
		mustDo(t, err)
		c.Encryption, c.PlaintextLength, c.PlaintextSHA256 = trust.EncryptionScheme, res.PlaintextLength, res.PlaintextSHA256
		payload = ct.Bytes()
		mustDo(t, os.MkdirAll(filepath.Join(r.Dir(), "content-keys"), 0o700))
		mustDo(t, os.WriteFile(filepath.Join(r.Dir(), "content-keys", rel.name+".key"), []byte(hex.EncodeToString(key)+"\n"), 0o600))
		e.keys[rel.name] = key
	}
	mustDo(t, r.AddTarget(rel.name, bytes.NewReader(payload), c, nil))
	e.releases = append(e.releases, rel.name)
}

// commit signs the staged targets, commits and publishes, closing r.
func (e *e2e) commit(r *repo.Repo) {
	t := e.t
	defer r.Close()
	mustDo(t, r.Sign("targets", e.signers["targets"]))
	if _, err := r.Commit(e.clock.Now(), repo.OnlineKeys{Snapshot: e.signers["snapshot"], Timestamp: e.signers["timestamp"]}); err != nil {
		t.Fatal(err)
	}
	mustDo(t, r.Publish(e.published))
}

// reopenRepo opens the image repository workspace for another release
// manager's step.
func (e *e2e) reopenRepo() *repo.Repo {
	r, err := repo.Open(filepath.Join(e.dir, "imagerepo"))
	mustDo(e.t, err)
	r.Now = e.clock.Now
	return r
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tlsConfig trusts the server CA at the fake clock.
func (e *e2e) tlsConfig(cert *tls.Certificate) *tls.Config {
	c := &tls.Config{RootCAs: e.caPool, ServerName: "localhost", Time: e.clock.Now, MinVersion: tls.VersionTLS12}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

func (e *e2e) httpClient(cert *tls.Certificate) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: e.tlsConfig(cert), ForceAttemptHTTP2: true}, Timeout: 30 * time.Second}
}

// api is a management API call's answer.
type apiAnswer struct {
	Status int
	Body   []byte
	Header http.Header
}

func (a apiAnswer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.Body, v); err != nil {
		t.Fatalf("decode %s: %v", a.Body, err)
	}
}

// call makes a management API request with token (may be empty); body is
// marshalled to JSON unless it is []byte (sent as is with ctype).
func (e *e2e) call(method, path, token string, body any) apiAnswer {
	return e.callType(method, path, token, "application/json", body)
}

func (e *e2e) callType(method, path, token, ctype string, body any) apiAnswer {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.srv.ManagementURL()+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.httpClient(nil).Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return apiAnswer{Status: resp.StatusCode, Body: data, Header: resp.Header}
}

// must asserts the status of an answer.
func (e *e2e) must(a apiAnswer, status int) apiAnswer {
	e.t.Helper()
	if a.Status != status {
		e.t.Fatalf("status %d, want %d: %s", a.Status, status, a.Body)
	}
	return a
}

// login returns a session token.
func (e *e2e) login(name, pw string) string {
	e.t.Helper()
	a := e.must(e.call("POST", "/api/v1/sessions", "", map[string]string{"name": name, "password": pw}), 200)
	var s struct{ Token string }
	a.decode(e.t, &s)
	return s.Token
}

// adminToken logs the fixture's administrator in.
func (e *e2e) adminToken() string { return e.login("root-admin", e.adminPW) }

// device is an in-process device: its key, identity and client.
type device struct {
	e       *e2e
	key     *ecdsa.PrivateKey
	id      string
	serial  string
	hw      string
	cert    *tls.Certificate
	client  *deviceapi.Client
	nonce   string
	seq     int
	lastDoc json.RawMessage
	// enc is the device's X25519 key for encrypted releases; nil: none.
	enc *ecdh.PrivateKey
}

func (e *e2e) newDevice(serial, hw string) *device {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	return &device{e: e, key: key, id: koshin.DeviceID(der), serial: serial, hw: hw}
}

// publicKeyB64 is the CSV form of the device key.
func (d *device) publicKeyB64() string {
	der, _ := x509.MarshalPKIXPublicKey(d.key.Public())
	return base64.StdEncoding.EncodeToString(der)
}

func (d *device) csr() string {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, d.key)
	if err != nil {
		d.e.t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// enroll asks for a certificate with token ("" for pre-authorised) and
// returns the error, keeping the certificate on success.
func (d *device) enroll(token string) error {
	c := deviceapi.NewClient(d.e.srv.DeviceURL(), d.e.httpClient(nil))
	c.Attempts = 1
	req := deviceapi.EnrollRequest{CSR: d.csr(), Serial: d.serial, HardwareID: d.hw, Token: token}
	if d.enc != nil {
		req.EncryptionKey, _ = encryption.MarshalDevicePublicKey(d.enc.PublicKey())
	}
	resp, err := c.Enroll(context.Background(), req)
	if err != nil {
		return err
	}
	if resp.DeviceID != d.id {
		return fmt.Errorf("enrolled as %s, want %s", resp.DeviceID, d.id)
	}
	blk, _ := pem.Decode([]byte(resp.Certificate))
	if blk == nil {
		return fmt.Errorf("no certificate in answer")
	}
	d.cert = &tls.Certificate{Certificate: [][]byte{blk.Bytes}, PrivateKey: d.key}
	d.client = deviceapi.NewClient(d.e.srv.DeviceURL(), d.e.httpClient(d.cert))
	d.client.Attempts = 1
	return nil
}

// report is the device's current report.
func (d *device) report() deviceapi.Report {
	return deviceapi.Report{
		DeviceID: d.id, Time: d.e.clock.Now(), HardwareID: d.hw,
		Components: []deviceapi.Component{{Name: "rootfs", Version: "1.0", ReleaseCounter: 1}},
		Slot:       deviceapi.SlotState{Active: "A", Healthy: true},
		Settings:   deviceapi.Settings{UpdatesEnabled: true, Automatic: true, Notifications: true},
		Security:   deviceapi.Security{BootIntegrity: "verified"},
	}
}

// freshNonce is a new check-in nonce, kept to check the director's echo.
func (d *device) freshNonce() string {
	d.nonce = hex.EncodeToString(randomBytes(16))
	return d.nonce
}

func (d *device) checkIn() (deviceapi.CheckInResponse, error) {
	resp, err := d.client.Report(context.Background(), d.key, d.report(), d.freshNonce())
	if err == nil && resp.Director != nil {
		d.lastDoc = resp.Director
	}
	return resp, err
}

func (d *device) mustCheckIn() deviceapi.CheckInResponse {
	d.e.t.Helper()
	resp, err := d.checkIn()
	if err != nil {
		d.e.t.Fatalf("device %s check-in: %v", d.serial, err)
	}
	return resp
}

// send reports events about target.
func (d *device) send(target string, types ...deviceapi.EventType) {
	d.e.t.Helper()
	var b deviceapi.EventBatch
	for _, typ := range types {
		d.seq++
		b.Events = append(b.Events, deviceapi.Event{ID: fmt.Sprintf("%s-%d", d.serial, d.seq), Type: typ, Target: target, Time: d.e.clock.Now()})
	}
	if err := d.client.Events(context.Background(), b); err != nil {
		d.e.t.Fatalf("device %s events: %v", d.serial, err)
	}
}

// tick runs one rollout engine pass at the fake clock.
func (e *e2e) tick() {
	e.t.Helper()
	if err := e.srv.Engine.Tick(context.Background()); err != nil {
		e.t.Fatalf("engine tick: %v", err)
	}
}

func (e *e2e) writeFileAt(p string, data []byte) {
	if err := os.WriteFile(p, data, 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *e2e) writeFile(name string, data []byte) string {
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}
