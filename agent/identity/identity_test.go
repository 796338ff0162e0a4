package identity_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/agent/identity"
)

// issue signs a certificate for the CSR's key, as the server's device CA
// would.
func issue(t *testing.T, csrPEM string) (cert, ca string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "device CA"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode([]byte(csrPEM))
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		t.Fatalf("csr: %v", err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Unix(0, 0), NotAfter: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}
	caCert, _ := x509.ParseCertificate(caDER)
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, csr.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
}

func TestGenerateEnrollRotate(t *testing.T) {
	s := identity.Store{Dir: filepath.Join(t.TempDir(), "id")}
	if _, err := s.Load(); !errors.Is(err, identity.ErrNoKey) {
		t.Fatalf("load of an empty store: %v, want ErrNoKey", err)
	}
	id, err := s.Generate()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{identity.KeyFile, identity.EncryptionKeyFile} {
		fi, err := os.Stat(filepath.Join(s.Dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v mode %v, want 0600", name, err, fi.Mode())
		}
	}
	again, err := s.Generate()
	if err != nil || again.ID != id.ID {
		t.Fatalf("second Generate changed the identity: %v", err)
	}
	if id.Enrolled() {
		t.Fatal("enrolled before a certificate was stored")
	}
	csr, err := id.CSR()
	if err != nil {
		t.Fatal(err)
	}
	cert, ca := issue(t, csr)
	if err := s.SaveEnrollment(id, cert, ca, identity.Enrollment{DeviceID: "someone-else"}); err == nil {
		t.Fatal("stored an enrollment for another device ID")
	}
	if err := s.SaveEnrollment(id, cert, ca, identity.Enrollment{DeviceID: id.ID, Serial: "SN1", HardwareID: "board-a"}); err != nil {
		t.Fatal(err)
	}
	loaded, err := s.Load()
	if err != nil || !loaded.Enrolled() || loaded.ServerCA == nil || loaded.Enrollment.Serial != "SN1" {
		t.Fatalf("reloaded identity %+v, %v", loaded, err)
	}
	if _, err := loaded.TLSCertificate(); err != nil {
		t.Fatal(err)
	}

	fresh, deleted, err := s.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.ID == id.ID || fresh.Enrolled() {
		t.Fatalf("rotation kept the identity (same ID %v, enrolled %v)", fresh.ID == id.ID, fresh.Enrolled())
	}
	if len(deleted) != 4 {
		t.Fatalf("deleted %v, want key, encryption key, certificate and enrollment", deleted)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, identity.ServerCAFile)); err != nil {
		t.Fatalf("server CA not kept: %v", err)
	}
}

func TestCertificateForAnotherKeyRefused(t *testing.T) {
	a := identity.Store{Dir: t.TempDir()}
	b := identity.Store{Dir: t.TempDir()}
	ida, _ := a.Generate()
	idb, _ := b.Generate()
	csr, _ := idb.CSR()
	cert, ca := issue(t, csr)
	if err := a.SaveEnrollment(ida, cert, ca, identity.Enrollment{DeviceID: ida.ID}); err == nil {
		t.Fatal("stored a certificate issued for another key")
	}
}

func TestDestroyOverwritesBeforeRemoving(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "data.key")
	if err := os.WriteFile(p, []byte("secret key material"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A hard link sees the inode's bytes after the name is gone: they must
	// no longer be the key.
	link := filepath.Join(dir, "witness")
	if err := os.Link(p, link); err != nil {
		t.Skip("no hard links here:", err)
	}
	ok, err := identity.Destroy(p)
	if err != nil || !ok {
		t.Fatalf("destroy: %v %v", ok, err)
	}
	b, _ := os.ReadFile(link)
	if string(b) == "secret key material" {
		t.Fatal("key bytes survive the destruction")
	}
	if ok, err := identity.Destroy(p); ok || err != nil {
		t.Fatalf("second destroy: %v %v, want nothing to do", ok, err)
	}
}
