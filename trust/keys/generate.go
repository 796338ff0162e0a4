package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
)

// Algorithm names a signing algorithm koshin keys may use. Both are strong
// signature schemes TUF verifiers understand (CCDS UPC07).
type Algorithm string

const (
	// Ed25519 is the default for file keys: small, fast, deterministic.
	Ed25519 Algorithm = "ed25519"
	// ECDSAP256 is ECDSA on NIST P-256 with SHA-256; hardware tokens offer
	// it where they lack Ed25519 (crypto11 has no Ed25519 API).
	ECDSAP256 Algorithm = "ecdsa-p256"
)

// Validate reports whether a is a supported algorithm.
func (a Algorithm) Validate() error {
	switch a {
	case Ed25519, ECDSAP256:
		return nil
	}
	return fmt.Errorf("unsupported key algorithm %q (want %q or %q)", string(a), Ed25519, ECDSAP256)
}

// Generate creates a new software key from crypto/rand.
func Generate(alg Algorithm) (crypto.Signer, error) {
	switch alg {
	case Ed25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate ed25519 key: %w", err)
		}
		return priv, nil
	case ECDSAP256:
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate ecdsa p-256 key: %w", err)
		}
		return priv, nil
	}
	return nil, alg.Validate()
}

// AlgorithmOf names the algorithm of a public key, or fails for key types
// koshin does not sign with (RSA, other curves).
func AlgorithmOf(pub crypto.PublicKey) (Algorithm, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", fmt.Errorf("ed25519 public key of %d bytes", len(k))
		}
		return Ed25519, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("ecdsa key on %s: only P-256 is supported", k.Curve.Params().Name)
		}
		return ECDSAP256, nil
	}
	return "", fmt.Errorf("unsupported public key type %T", pub)
}

// privateDER exports a software key as PKCS#8 DER for sealing. Keys held by
// tokens have no exportable form, which is the point of keeping them there.
func privateDER(s crypto.Signer) ([]byte, Algorithm, error) {
	alg, err := AlgorithmOf(s.Public())
	if err != nil {
		return nil, "", err
	}
	switch s.(type) {
	case ed25519.PrivateKey, *ecdsa.PrivateKey:
	default:
		return nil, "", fmt.Errorf("cannot export key of type %T: only software keys can be written to a key file", s)
	}
	der, err := x509.MarshalPKCS8PrivateKey(s)
	if err != nil {
		return nil, "", fmt.Errorf("marshal private key: %w", err)
	}
	return der, alg, nil
}

// signerFromDER parses PKCS#8 DER and checks it is the algorithm and public
// key the file's header promised.
func signerFromDER(der []byte, alg Algorithm, pub crypto.PublicKey) (crypto.Signer, error) {
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: parse private key: %v", ErrInvalidKeyFile, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: private key of type %T", ErrInvalidKeyFile, key)
	}
	if got, err := AlgorithmOf(s.Public()); err != nil || got != alg {
		return nil, fmt.Errorf("%w: private key is not %s", ErrInvalidKeyFile, alg)
	}
	if !publicEqual(s.Public(), pub) {
		return nil, fmt.Errorf("%w: private key does not match the public key", ErrInvalidKeyFile)
	}
	return s, nil
}

func publicEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}
