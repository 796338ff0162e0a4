package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/pki"
)

// loginOutcome is what a caller sees of one login attempt.
type loginOutcome struct {
	Status     int
	RetryAfter string
}

func (e *e2e) attempt(name, pw string) loginOutcome {
	a := e.call("POST", "/api/v1/sessions", "", map[string]string{"name": name, "password": pw})
	return loginOutcome{a.Status, a.Header.Get("Retry-After")}
}

// TestLoginLockout: repeated bad logins lock the account with a growing
// delay (EN 303 645 5.1-5, CCDS STS13, OTA 15); while locked even the
// right password is refused; the lock lifts on its own. An unknown name
// shows exactly the same sequence, so the lockout reveals no names.
func TestLoginLockout(t *testing.T) {
	e := newE2E(t, e2eOpts{config: func(c *ServerConfig) {
		c.Limits.LoginRate, c.Limits.LoginBurst = 1000, 1000 // this test is about the account lockout
	}})
	wrong := "not-" + e.adminPW
	var seq []loginOutcome
	run := func(name string) []loginOutcome {
		var out []loginOutcome
		for range 5 {
			out = append(out, e.attempt(name, wrong))
		}
		for _, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
			out = append(out, e.attempt(name, wrong)) // locked: refused without checking
			e.clock.Advance(wait)
			out = append(out, e.attempt(name, wrong)) // lock over: one more failure, a longer lock
		}
		return out
	}
	seq = run("root-admin")
	want := []loginOutcome{{401, ""}, {401, ""}, {401, ""}, {401, ""}, {401, ""},
		{429, "1"}, {401, ""}, {429, "2"}, {401, ""}, {429, "4"}, {401, ""}}
	if !slices.Equal(seq, want) {
		t.Fatalf("lockout sequence\n got %v\nwant %v", seq, want)
	}
	if got := e.attempt("root-admin", e.adminPW); got.Status != 429 || got.RetryAfter != "8" {
		t.Fatalf("right password while locked: %+v", got)
	}
	e.clock.Advance(8 * time.Second)
	e.must(e.call("POST", "/api/v1/sessions", "", map[string]string{"name": "root-admin", "password": e.adminPW}), 200)
	if got := e.attempt("root-admin", wrong); got.Status != 401 {
		t.Fatalf("after a successful login the count starts again: %+v", got)
	}
	if ghost := run("no-such-operator"); !slices.Equal(ghost, want) {
		t.Fatalf("unknown name behaves differently\n got %v\nwant %v", ghost, want)
	}
	var audit struct {
		Items []struct{ Action, Result, Detail string }
	}
	e.must(e.call("GET", "/api/v1/audit?action=session.login&limit=1000", e.adminToken(), nil), 200).decode(t, &audit)
	locked := 0
	for _, a := range audit.Items {
		if a.Result == "denied" && strings.Contains(a.Detail, "locked until") {
			locked++
		}
	}
	if locked < 6 {
		t.Fatalf("audit log records %d lockouts, want at least 6", locked)
	}
}

// TestLoginRateLimitPerAddress: on top of the per-account lockout, one
// source address gets a bucket of login attempts (default burst 10).
func TestLoginRateLimitPerAddress(t *testing.T) {
	e := newE2E(t, e2eOpts{})
	for i := range 10 {
		if got := e.attempt(fmt.Sprintf("guess-%d", i), "whatever-password"); got.Status != 401 {
			t.Fatalf("attempt %d: %+v", i, got)
		}
	}
	got := e.call("POST", "/api/v1/sessions", "", map[string]string{"name": "root-admin", "password": e.adminPW})
	if got.Status != 429 || got.Header.Get("Retry-After") == "" || !strings.Contains(string(got.Body), "your address") {
		t.Fatalf("11th attempt: %d %s", got.Status, got.Body)
	}
}

// TestBadDeviceCertificates: only the current certificate of an active
// device works (CCDS UPD08, STS12, HLC07). Certificates from another CA
// fail the TLS handshake; a decommissioned device is refused at its next
// request on the same kept-alive connection; a superseded or expired
// certificate is refused, and the device recovers by enrolling again with
// its key.
func TestBadDeviceCertificates(t *testing.T) {
	e := newE2E(t, e2eOpts{config: func(c *ServerConfig) { c.DeviceCertValidity = time.Hour }})
	admin := e.adminToken()
	d := e.enrollWithToken(admin, "SN-1")
	d.mustCheckIn()

	foreign := e.foreignCert(t)
	c := deviceapi.NewClient(e.srv.DeviceURL(), e.httpClient(foreign))
	c.Attempts = 1
	if _, err := c.Report(context.Background(), d.key, d.report(), d.freshNonce()); err == nil || statusOf(err) != 0 {
		t.Fatalf("certificate of another CA: %v (want a TLS failure)", err)
	}
	anon := deviceapi.NewClient(e.srv.DeviceURL(), e.httpClient(nil))
	anon.Attempts = 1
	if _, err := anon.Report(context.Background(), d.key, d.report(), d.freshNonce()); statusOf(err) != 401 {
		t.Fatalf("no certificate: %v", err)
	}

	// Renewal supersedes the old certificate at once.
	old := d.client
	mustDo(t, d.enroll(""))
	if _, err := old.Report(context.Background(), d.key, d.report(), d.freshNonce()); statusOf(err) != 401 {
		t.Fatalf("superseded certificate: %v", err)
	}
	d.mustCheckIn()

	// Expiry: refused, then renewed by enrolling again.
	e.clock.Advance(61 * time.Minute)
	if _, err := d.checkIn(); statusOf(err) != 401 {
		t.Fatalf("expired certificate: %v", err)
	}
	mustDo(t, d.enroll(""))
	d.mustCheckIn()

	// Decommission: refused on the very connection the device keeps open.
	e.must(e.call("POST", "/api/v1/devices/"+d.id+"/decommission", admin, nil), 200)
	if _, err := d.checkIn(); statusOf(err) != 401 {
		t.Fatalf("decommissioned device checked in: %v", err)
	}
	if err := d.client.Events(context.Background(), deviceapi.EventBatch{Events: []deviceapi.Event{{ID: "x1", Type: deviceapi.EventTamper}}}); statusOf(err) != 401 {
		t.Fatalf("decommissioned device sent events: %v", err)
	}
	resp, err := e.httpClient(d.cert).Get(e.srv.DeviceURL() + "/device/v1/image/timestamp.json")
	mustDo(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("decommissioned device fetched metadata: %d", resp.StatusCode)
	}
	if err := d.enroll(""); statusOf(err) != http.StatusForbidden {
		t.Fatalf("decommissioned identity re-enrolled: %v", err)
	}
}

// enrollWithToken enrolls a new device with a fresh one-time token.
func (e *e2e) enrollWithToken(admin, serial string) *device {
	var created struct{ Token string }
	e.must(e.call("POST", "/api/v1/enrollment-tokens", admin, map[string]any{}), 201).decode(e.t, &created)
	d := e.newDevice(serial, "board-a")
	mustDo(e.t, d.enroll(created.Token))
	return d
}

// foreignCert is a client certificate from a CA the server does not know,
// carrying a device-like name.
func (e *e2e) foreignCert(t *testing.T) *tls.Certificate {
	other, err := pki.Open(pki.Options{Dir: t.TempDir(), Now: e.clock.Now})
	mustDo(t, err)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	csr, err := pki.ParseCSR(pemCSR(der))
	mustDo(t, err)
	dc, err := other.IssueDevice(csr)
	mustDo(t, err)
	return &tls.Certificate{Certificate: [][]byte{dc.Cert.Raw}, PrivateKey: key}
}

// selfSigned is a self-made client certificate.
func (e *e2e) selfSigned(t *testing.T) *tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "device"},
		NotBefore: e.clock.Now().Add(-time.Hour), NotAfter: e.clock.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	mustDo(t, err)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestSelfSignedDeviceCertificate(t *testing.T) {
	e := newE2E(t, e2eOpts{})
	c := deviceapi.NewClient(e.srv.DeviceURL(), e.httpClient(e.selfSigned(t)))
	c.Attempts = 1
	err := c.Events(context.Background(), deviceapi.EventBatch{Events: []deviceapi.Event{{ID: "x", Type: deviceapi.EventTamper}}})
	var se *deviceapi.StatusError
	if err == nil || errors.As(err, &se) {
		t.Fatalf("self-signed certificate: %v (want a TLS failure)", err)
	}
}

func pemCSR(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// TestEnrollRateLimitPerAddress: refused enrollments cost the server a
// signature check, a certificate and an audit entry each, so one address
// gets a bucket of them.
func TestEnrollRateLimitPerAddress(t *testing.T) {
	e := newE2E(t, e2eOpts{config: func(c *ServerConfig) { c.Limits.EnrollBurst = 3 }})
	for i := range 3 {
		d := e.newDevice(fmt.Sprintf("SN-%d", i), "board-a")
		if err := d.enroll("kenr_not-a-token"); statusOf(err) != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	d := e.newDevice("SN-9", "board-a")
	if err := d.enroll("kenr_not-a-token"); statusOf(err) != http.StatusTooManyRequests {
		t.Fatalf("4th attempt: %v", err)
	}
}
