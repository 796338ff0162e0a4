package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"time"

	"github.com/koshin-ota/koshin"
)

// MaxCSRLen bounds a PEM CSR (deviceapi allows 8 KiB).
const MaxCSRLen = 8 << 10

// ErrCSR is wrapped by every ParseCSR error; its message is safe to return
// to the device.
var ErrCSR = errors.New("invalid certificate request")

type csrError struct{ msg string }

func (e *csrError) Error() string { return "Certificate request " + e.msg + "." }
func (e *csrError) Unwrap() error { return ErrCSR }

// CSR is a checked certificate signing request.
type CSR struct {
	// PublicKey is ECDSA P-256 or Ed25519, the schemes devices sign reports
	// with (deviceapi.CheckIn).
	PublicKey crypto.PublicKey
	// PublicKeyDER is the PKIX encoding; DeviceID is its hex SHA-256.
	PublicKeyDER []byte
	DeviceID     string
}

// ParseCSR decodes exactly one PEM "CERTIFICATE REQUEST" block with nothing
// but whitespace around it, checks its self-signature (proof that the
// requester holds the private key) and its key type. The subject and
// extensions the device asked for are ignored: the certificate names only
// what the server decides.
func ParseCSR(data []byte) (*CSR, error) {
	if len(data) == 0 || len(data) > MaxCSRLen {
		return nil, &csrError{"must be 1-8192 bytes of PEM"}
	}
	b, rest := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE REQUEST" || len(b.Headers) != 0 || len(bytes.TrimSpace(rest)) != 0 {
		return nil, &csrError{"must be a single PEM CERTIFICATE REQUEST block"}
	}
	req, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, &csrError{"is not valid PKCS#10"}
	}
	if err := req.CheckSignature(); err != nil {
		return nil, &csrError{"signature does not verify"}
	}
	if !supportedKey(req.PublicKey) {
		return nil, &csrError{"must use an ECDSA P-256 or Ed25519 key"}
	}
	if len(req.RawSubjectPublicKeyInfo) > koshin.MaxPublicKeyLen {
		return nil, &csrError{"public key is too large"}
	}
	der := bytes.Clone(req.RawSubjectPublicKeyInfo)
	return &CSR{PublicKey: req.PublicKey, PublicKeyDER: der, DeviceID: koshin.DeviceID(der)}, nil
}

// CheckDeviceKey checks that der is a PKIX public key of a kind devices
// may enroll with, for pre-authorisation uploads.
func CheckDeviceKey(der []byte) error {
	if len(der) > koshin.MaxPublicKeyLen {
		return errBadKey
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil || !supportedKey(k) {
		return errBadKey
	}
	return nil
}

var errBadKey = errors.New("public key must be PKIX DER of an ECDSA P-256 or Ed25519 key")

func supportedKey(k crypto.PublicKey) bool {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		return k.Curve == elliptic.P256()
	case ed25519.PublicKey:
		return len(k) == ed25519.PublicKeySize
	}
	return false
}

// DeviceCert is an issued device certificate.
type DeviceCert struct {
	Cert *x509.Certificate
	PEM  []byte
	// Serial is the lowercase hex serial, what the device store keeps.
	Serial string
}

// IssueDevice issues a client certificate for the CSR's key, naming the
// device ID as its common name, valid for Options.DeviceValidity from now.
func (a *Authority) IssueDevice(csr *CSR) (*DeviceCert, error) {
	now := a.opts.Now()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: csr.DeviceID, Organization: []string{"koshin device"}},
		NotBefore:   now.Add(-backdate),
		NotAfter:    now.Add(a.opts.DeviceValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	cert, err := a.deviceCA.sign(tmpl, csr.PublicKey)
	if err != nil {
		return nil, err
	}
	return &DeviceCert{Cert: cert, PEM: CertPEM(cert), Serial: SerialHex(cert)}, nil
}

// DeviceIdentity is what a verified client certificate says.
type DeviceIdentity struct {
	ID        string
	Serial    string
	PublicKey crypto.PublicKey
	// PublicKeyDER is the certificate's PKIX key.
	PublicKeyDER []byte
	NotAfter     time.Time
}

// Expired reports whether the certificate has expired at now; expired
// certificates may only renew (see VerifyDevice).
func (d *DeviceIdentity) Expired(now time.Time) bool { return now.After(d.NotAfter) }

func identityOf(c *x509.Certificate) *DeviceIdentity {
	return &DeviceIdentity{
		ID: koshin.DeviceID(c.RawSubjectPublicKeyInfo), Serial: SerialHex(c), PublicKey: c.PublicKey,
		PublicKeyDER: c.RawSubjectPublicKeyInfo, NotAfter: c.NotAfter,
	}
}
