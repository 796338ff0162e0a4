package pki_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/pki"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustOpen(t *testing.T, dir string, c *clock, hosts ...string) *pki.Authority {
	t.Helper()
	a, err := pki.Open(pki.Options{Dir: dir, Now: c.Now, Hosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustCSR(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ignored"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func p256(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestOpenCreatesAndReloads(t *testing.T) {
	dir := t.TempDir()
	c := &clock{start}
	a := mustOpen(t, dir, c)
	fp := a.ServerCAFingerprint()
	if len(fp) != 95 || strings.Count(fp, ":") != 31 {
		t.Fatalf("fingerprint %q", fp)
	}
	for name, mode := range map[string]os.FileMode{
		"server-ca.key.pem": 0o600, "server.key.pem": 0o600, "device-ca.key.pem": 0o600,
		"server-ca.crt": 0o644, "device-ca.crt": 0o644,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v mode %v, want %v", name, err, fi.Mode().Perm(), mode)
		}
	}
	serial := a.ServerCertificate().SerialNumber
	b := mustOpen(t, dir, c)
	if b.ServerCAFingerprint() != fp || b.ServerCertificate().SerialNumber.Cmp(serial) != 0 {
		t.Fatal("reopening changed the CA or reissued a fresh server certificate")
	}
	if !bytes.Equal(b.DeviceCA().Raw, a.DeviceCA().Raw) {
		t.Fatal("device CA changed on reopen")
	}
}

func TestServerRenewal(t *testing.T) {
	dir := t.TempDir()
	c := &clock{start}
	a := mustOpen(t, dir, c)
	first := a.ServerCertificate()
	c.t = start.Add(pki.DefaultServerValidity / 2)
	if err := a.RenewServer(); err != nil {
		t.Fatal(err)
	}
	if a.ServerCertificate().SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatal("renewed with half the validity left")
	}
	c.t = start.Add(pki.DefaultServerValidity * 3 / 4)
	if err := a.RenewServer(); err != nil {
		t.Fatal(err)
	}
	second := a.ServerCertificate()
	if second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("not renewed with a quarter of the validity left")
	}
	if _, err := second.Verify(x509.VerifyOptions{Roots: a.ServerPool(), CurrentTime: c.t, DNSName: "localhost"}); err != nil {
		t.Fatal(err)
	}
	b := mustOpen(t, dir, c, "update.example.com")
	if b.ServerCertificate().VerifyHostname("update.example.com") != nil {
		t.Fatal("new host not covered after reopen")
	}
}

func TestCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	c := &clock{start}
	mustOpen(t, dir, c)
	other := t.TempDir()
	mustOpen(t, other, c)
	// A CA file whose key belongs to another certificate is refused.
	key, _ := os.ReadFile(filepath.Join(dir, "device-ca.key.pem"))
	cert, _ := os.ReadFile(filepath.Join(other, "device-ca.key.pem"))
	keyPart := key[:bytes.Index(key, []byte("-----BEGIN CERTIFICATE"))]
	certPart := cert[bytes.Index(cert, []byte("-----BEGIN CERTIFICATE")):]
	os.WriteFile(filepath.Join(dir, "device-ca.key.pem"), append(keyPart, certPart...), 0o600)
	if _, err := pki.Open(pki.Options{Dir: dir, Now: c.Now}); err == nil {
		t.Fatal("mismatched CA key and certificate accepted")
	}
	os.WriteFile(filepath.Join(dir, "device-ca.key.pem"), []byte("garbage"), 0o600)
	if _, err := pki.Open(pki.Options{Dir: dir, Now: c.Now}); err == nil {
		t.Fatal("garbage CA file accepted")
	}
}

func TestParseCSR(t *testing.T) {
	ec := p256(t)
	csr, err := pki.ParseCSR(mustCSR(t, ec))
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(ec.Public())
	if csr.DeviceID != koshin.DeviceID(der) || !bytes.Equal(csr.PublicKeyDER, der) {
		t.Fatal("device ID is not the hash of the PKIX key")
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := pki.ParseCSR(mustCSR(t, edKey)); err != nil {
		t.Fatalf("Ed25519: %v", err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	good := mustCSR(t, ec)
	blk, _ := pem.Decode(good)
	tampered := bytes.Clone(blk.Bytes)
	tampered[len(tampered)-3] ^= 1
	bad := map[string][]byte{
		"empty":      nil,
		"P-384":      mustCSR(t, p384),
		"RSA":        mustCSR(t, rsaKey),
		"tampered":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered}),
		"trailing":   append(bytes.Clone(good), "junk"...),
		"two blocks": append(bytes.Clone(good), good...),
		"wrong type": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes}),
		"headers":    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Headers: map[string]string{"a": "b"}, Bytes: blk.Bytes}),
		"oversized":  bytes.Repeat([]byte("A"), pki.MaxCSRLen+1),
	}
	for name, data := range bad {
		if _, err := pki.ParseCSR(data); !errors.Is(err, pki.ErrCSR) {
			t.Errorf("%s: err = %v, want ErrCSR", name, err)
		}
	}
}

// TestHandshake runs real TLS handshakes against DeviceTLSConfig.
func TestHandshake(t *testing.T) {
	c := &clock{start}
	a := mustOpen(t, t.TempDir(), c)
	key := p256(t)
	csr, _ := pki.ParseCSR(mustCSR(t, key))
	dc, err := a.IssueDevice(csr)
	if err != nil {
		t.Fatal(err)
	}
	if dc.Cert.NotAfter.Sub(start) != pki.DefaultDeviceValidity || dc.Cert.Subject.CommonName != csr.DeviceID {
		t.Fatalf("certificate: %v %v", dc.Cert.NotAfter, dc.Cert.Subject)
	}
	good := tls.Certificate{Certificate: [][]byte{dc.Cert.Raw}, PrivateKey: key}

	stranger := mustOpen(t, t.TempDir(), c)
	skey := p256(t)
	scsr, _ := pki.ParseCSR(mustCSR(t, skey))
	sdc, _ := stranger.IssueDevice(scsr)
	foreign := tls.Certificate{Certificate: [][]byte{sdc.Cert.Raw}, PrivateKey: skey}

	id, version, err := handshake(t, a, &good, 0)
	if err != nil || id == nil || id.ID != csr.DeviceID || id.Serial != dc.Serial {
		t.Fatalf("good certificate: %v %+v", err, id)
	}
	if version != tls.VersionTLS13 {
		t.Errorf("negotiated %x, want TLS 1.3", version)
	}
	if id, _, err := handshake(t, a, nil, 0); err != nil || id != nil {
		t.Fatalf("no certificate (enrollment): %v %+v", err, id)
	}
	if _, _, err := handshake(t, a, &foreign, 0); err == nil {
		t.Fatal("certificate from another CA accepted")
	}
	if _, _, err := handshake(t, a, &good, tls.VersionTLS11); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
	c.t = dc.Cert.NotAfter.Add(24 * time.Hour)
	if id, _, err := handshake(t, a, &good, 0); err != nil || !id.Expired(c.t) {
		t.Fatalf("expired certificate within renewal grace: %v", err)
	}
	c.t = dc.Cert.NotAfter.Add(pki.DefaultRenewalGrace + time.Hour)
	if _, _, err := handshake(t, a, &good, 0); err == nil {
		t.Fatal("certificate expired beyond the renewal grace accepted")
	}
}

// handshake connects a client presenting cert (nil: none) and returns what
// the server identified.
func handshake(t *testing.T, a *pki.Authority, cert *tls.Certificate, maxVersion uint16) (*pki.DeviceIdentity, uint16, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", a.DeviceTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		id  *pki.DeviceIdentity
		err error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer conn.Close()
		tc := conn.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		cs := tc.ConnectionState()
		done <- result{id: pki.Identify(&cs)}
	}()
	cfg := &tls.Config{RootCAs: a.ServerPool(), ServerName: "localhost", MaxVersion: maxVersion, Time: func() time.Time { return start }}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	conn, cerr := tls.Dial("tcp", ln.Addr().String(), cfg)
	var version uint16
	if cerr == nil {
		version = conn.ConnectionState().Version
		conn.Read(make([]byte, 1)) // TLS 1.3 reports a refused client certificate on read
		conn.Close()
	}
	r := <-done
	if r.err != nil {
		return nil, 0, r.err
	}
	return r.id, version, cerr
}

func FuzzParseCSR(f *testing.F) {
	f.Add(mustCSR(f, p256(f)))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, err := pki.ParseCSR(data)
		if err != nil {
			if !errors.Is(err, pki.ErrCSR) {
				t.Fatalf("error %v does not wrap ErrCSR", err)
			}
			return
		}
		if csr.DeviceID != koshin.DeviceID(csr.PublicKeyDER) {
			t.Fatal("device ID does not match key")
		}
	})
}
