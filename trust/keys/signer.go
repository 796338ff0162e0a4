package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TUFSigner adapts any crypto.Signer holding an Ed25519 or ECDSA P-256 key
// (a decrypted key file, a PKCS#11 object, a TPM key) to the signer go-tuf's
// Metadata.Sign expects. ECDSA signatures are ASN.1 DER over SHA-256 of the
// canonical JSON, which is what the TUF scheme ecdsa-sha2-nistp256 verifies.
func TUFSigner(s crypto.Signer) (signature.Signer, error) {
	switch pub := s.Public().(type) {
	case ed25519.PublicKey:
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ecdsa key on %s: only P-256 is supported", pub.Curve.Params().Name)
		}
	default:
		return nil, fmt.Errorf("unsupported signing key type %T", pub)
	}
	return &tufSigner{s: s}, nil
}

type tufSigner struct{ s crypto.Signer }

func (t *tufSigner) PublicKey(...signature.PublicKeyOption) (crypto.PublicKey, error) {
	return t.s.Public(), nil
}

func (t *tufSigner) SignMessage(message io.Reader, _ ...signature.SignOption) ([]byte, error) {
	msg, err := io.ReadAll(message)
	if err != nil {
		return nil, err
	}
	if _, ok := t.s.Public().(ed25519.PublicKey); ok {
		return t.s.Sign(rand.Reader, msg, crypto.Hash(0))
	}
	digest := sha256.Sum256(msg)
	return t.s.Sign(rand.Reader, digest[:], crypto.SHA256)
}

// TUFKey returns the TUF key record (and so the key ID) of a public key.
func TUFKey(pub crypto.PublicKey) (*metadata.Key, error) {
	k, err := metadata.KeyFromPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("tuf key: %w", err)
	}
	return k, nil
}

// KeyID returns the TUF key ID of a public key.
func KeyID(pub crypto.PublicKey) (string, error) {
	k, err := TUFKey(pub)
	if err != nil {
		return "", err
	}
	return k.ID()
}
