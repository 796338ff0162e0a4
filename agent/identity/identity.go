package identity

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/koshin-ota/koshin/internal/atomicfile"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/encryption"
)

// File names in the identity directory.
const (
	KeyFile           = "device.key"
	EncryptionKeyFile = "encryption.key"
	CertFile          = "device.crt"
	ServerCAFile      = "server-ca.pem"
	EnrollmentFile    = "enrollment.json"
)

// maxFile bounds every identity file read; real ones are a few hundred
// bytes to a few KiB.
const maxFile = 64 << 10

var (
	// ErrNoKey: the directory holds no device key (never generated, or
	// destroyed by a reset that did not finish).
	ErrNoKey = errors.New("identity: no device key")
	// ErrNotEnrolled: keys exist, but no certificate has been issued for
	// them yet.
	ErrNotEnrolled = errors.New("identity: device not enrolled")
)

// Store is an identity directory.
type Store struct {
	Dir string
}

// Identity is a loaded identity.
type Identity struct {
	// ID is the device ID: hex SHA-256 of the PKIX public key.
	ID         string
	Key        *ecdsa.PrivateKey
	Encryption *ecdh.PrivateKey
	// Cert is the device certificate chain (DER, leaf first); nil before
	// enrollment. ServerCA is nil without a pinned server CA.
	Cert     [][]byte
	ServerCA *x509.CertPool
	// Enrollment is what enrollment.json recorded (zero before).
	Enrollment Enrollment
}

// Enrollment records an enrollment.
type Enrollment struct {
	DeviceID   string `json:"device_id"`
	Serial     string `json:"serial"`
	HardwareID string `json:"hardware_id"`
	Server     string `json:"server"`
}

func (s Store) path(name string) string { return filepath.Join(s.Dir, name) }

// Generate creates a new key pair and encryption key unless the directory
// already holds a device key, and returns the identity either way.
func (s Store) Generate() (*Identity, error) {
	if id, err := s.Load(); err == nil || !errors.Is(err, ErrNoKey) {
		return id, err
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	enc, err := encryption.GenerateDeviceKey()
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generate device key: %w", err)
	}
	if err := s.writeKey(EncryptionKeyFile, enc); err != nil {
		return nil, err
	}
	if err := s.writeKey(KeyFile, key); err != nil {
		return nil, err
	}
	return s.Load()
}

func (s Store) writeKey(name string, key any) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("identity: encode %s: %w", name, err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := atomicfile.WriteFile(s.path(name), data, 0o600); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	return nil
}

// Load reads the identity. It returns ErrNoKey without a device key; a
// missing certificate is not an error (Identity.Cert is nil).
func (s Store) Load() (*Identity, error) {
	k, err := s.readKey(KeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoKey
	}
	if err != nil {
		return nil, err
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("identity: %s is not an ECDSA P-256 key", KeyFile)
	}
	id := &Identity{Key: key}
	if id.ID, err = DeviceID(key.Public()); err != nil {
		return nil, err
	}
	if err := s.loadEncryption(id); err != nil {
		return nil, err
	}
	if err := s.loadCert(id); err != nil {
		return nil, err
	}
	return id, s.loadEnrollment(id)
}

func (s Store) loadEncryption(id *Identity) error {
	k, err := s.readKey(EncryptionKeyFile)
	if err != nil {
		return err
	}
	enc, ok := k.(*ecdh.PrivateKey)
	if !ok || enc.Curve() != ecdh.X25519() {
		return fmt.Errorf("identity: %s is not an X25519 key", EncryptionKeyFile)
	}
	id.Encryption = enc
	return nil
}

func (s Store) readKey(name string) (any, error) {
	b, err := s.read(name)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("identity: %s is not a PEM PRIVATE KEY", name)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("identity: %s: %w", name, err)
	}
	return k, nil
}

func (s Store) read(name string) ([]byte, error) {
	f, err := os.Open(s.path(name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, maxFile+1)
	n, err := readFull(f, b)
	if err != nil {
		return nil, fmt.Errorf("identity: read %s: %w", name, err)
	}
	if n > maxFile {
		return nil, fmt.Errorf("identity: %s larger than %d bytes", name, maxFile)
	}
	return b[:n], nil
}

func (s Store) loadCert(id *Identity) error {
	b, err := s.read(CertFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	chain, err := parseCerts(b)
	if err != nil {
		return fmt.Errorf("identity: %s: %w", CertFile, err)
	}
	if err := matchKey(chain[0], id.Key); err != nil {
		return err
	}
	id.Cert = chain
	if b, err = s.read(ServerCAFile); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	id.ServerCA = x509.NewCertPool()
	if !id.ServerCA.AppendCertsFromPEM(b) {
		return fmt.Errorf("identity: %s holds no certificate", ServerCAFile)
	}
	return nil
}

func (s Store) loadEnrollment(id *Identity) error {
	b, err := s.read(EnrollmentFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &id.Enrollment); err != nil {
		return fmt.Errorf("identity: %s: %w", EnrollmentFile, err)
	}
	return nil
}

// DeviceID is the hex SHA-256 of pub's PKIX encoding, the device ID the
// server derives from the enrollment CSR.
func DeviceID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("identity: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// CSR returns a PEM certificate request signed by the device key. The
// server ignores the subject; it carries the device ID for people reading
// the request.
func (id *Identity) CSR() (string, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: id.ID}}, id.Key)
	if err != nil {
		return "", fmt.Errorf("identity: certificate request: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}

// Enrolled reports whether a certificate has been issued.
func (id *Identity) Enrolled() bool { return len(id.Cert) > 0 }

// TLSCertificate returns the client certificate for mutual TLS, or
// ErrNotEnrolled.
func (id *Identity) TLSCertificate() (*tls.Certificate, error) {
	if !id.Enrolled() {
		return nil, ErrNotEnrolled
	}
	return &tls.Certificate{Certificate: id.Cert, PrivateKey: id.Key}, nil
}

// SaveEnrollment stores what the server issued. The certificate must be
// for this device's key and the device ID the server computed must be
// this device's; anything else is refused before a file is written.
func (s Store) SaveEnrollment(id *Identity, certPEM, serverCAPEM string, e Enrollment) error {
	if e.DeviceID != id.ID {
		return fmt.Errorf("%w: server enrolled device %q, this device is %q", trust.ErrInvalid, e.DeviceID, id.ID)
	}
	chain, err := parseCerts([]byte(certPEM))
	if err != nil {
		return fmt.Errorf("identity: issued certificate: %w", err)
	}
	if err := matchKey(chain[0], id.Key); err != nil {
		return err
	}
	if serverCAPEM != "" {
		if !x509.NewCertPool().AppendCertsFromPEM([]byte(serverCAPEM)) {
			return fmt.Errorf("%w: server CA holds no certificate", trust.ErrInvalid)
		}
		if err := atomicfile.WriteFile(s.path(ServerCAFile), []byte(serverCAPEM), 0o644); err != nil {
			return fmt.Errorf("identity: %w", err)
		}
	}
	meta, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(s.path(EnrollmentFile), meta, 0o600); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	// The certificate last: its presence means "enrolled".
	if err := atomicfile.WriteFile(s.path(CertFile), []byte(certPEM), 0o644); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	return nil
}

func parseCerts(b []byte) ([][]byte, error) {
	var chain [][]byte
	for len(chain) < 8 {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return nil, err
		}
		chain = append(chain, blk.Bytes)
	}
	if len(chain) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return chain, nil
}

func matchKey(leaf []byte, key *ecdsa.PrivateKey) error {
	c, err := x509.ParseCertificate(leaf)
	if err != nil {
		return fmt.Errorf("identity: certificate: %w", err)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(key.Public()) {
		return fmt.Errorf("%w: certificate is not for this device's key", trust.ErrInvalid)
	}
	return nil
}
