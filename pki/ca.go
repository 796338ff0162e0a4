package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// CA is a certificate authority: its certificate and signing key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Validity periods.
const (
	CAValidity            = 20 * 365 * 24 * time.Hour
	DefaultServerValidity = 397 * 24 * time.Hour // what browsers accept at most
	DefaultDeviceValidity = 180 * 24 * time.Hour
	// backdate absorbs clock skew between the server and a device or client
	// that checks NotBefore.
	backdate = 5 * time.Minute
)

// newCA creates a self-signed CA named cn.
func newCA(cn string, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"koshin"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          keyID(key.Public()),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// sign issues a certificate from tmpl for pub.
func (ca *CA) sign(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	tmpl.SerialNumber = newSerial()
	tmpl.AuthorityKeyId = ca.Cert.SubjectKeyId
	tmpl.SubjectKeyId = keyID(pub)
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// newSerial returns a random positive 128-bit serial (RFC 5280 §4.1.2.2
// allows up to 20 octets; randomness makes serials unguessable and unique
// across replicas without coordination).
func newSerial() *big.Int {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand documents a fatal error otherwise)
	b[0] &= 0x7f
	b[0] |= 0x40 // keep 16 octets so serials have one length
	return new(big.Int).SetBytes(b)
}

// SerialHex is a certificate serial in the form stores keep (lowercase hex).
func SerialHex(c *x509.Certificate) string { return hex.EncodeToString(c.SerialNumber.Bytes()) }

// keyID is the RFC 5280 §4.2.1.2 method 1 key identifier; SHA-1 is what the
// method specifies and is used as a name here, not for security.
func keyID(pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	h := sha1.Sum(der)
	return h[:]
}

// Fingerprint is the SHA-256 of a certificate's DER encoding as colon-
// separated uppercase hex, the form openssl and browsers show.
func Fingerprint(c *x509.Certificate) string {
	h := sha256.Sum256(c.Raw)
	s := strings.ToUpper(hex.EncodeToString(h[:]))
	var b strings.Builder
	for i := 0; i < len(s); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(s[i : i+2])
	}
	return b.String()
}

// CertPEM encodes a certificate as PEM.
func CertPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// encodeKeyPair is the private file: the PKCS#8 key, then the certificate.
func encodeKeyPair(key crypto.Signer, cert *x509.Certificate) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return append(out, CertPEM(cert)...), nil
}

// maxPEMFile bounds the files this package reads.
const maxPEMFile = 64 << 10

var errKeyPair = errors.New("expected one PRIVATE KEY and one CERTIFICATE block with matching keys")

// decodeKeyPair parses encodeKeyPair's output and checks that the key and
// the certificate belong together.
func decodeKeyPair(data []byte) (crypto.Signer, *x509.Certificate, error) {
	var key crypto.Signer
	var cert *x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		var err error
		switch {
		case b.Type == "PRIVATE KEY" && key == nil:
			key, err = parseKey(b.Bytes)
		case b.Type == "CERTIFICATE" && cert == nil:
			cert, err = x509.ParseCertificate(b.Bytes)
		default:
			err = errKeyPair
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if key == nil || cert == nil || !samePublic(key.Public(), cert.PublicKey) {
		return nil, nil, errKeyPair
	}
	return key, cert, nil
}

func parseKey(der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errKeyPair
	}
	return s, nil
}

func samePublic(a, b crypto.PublicKey) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b)
}
