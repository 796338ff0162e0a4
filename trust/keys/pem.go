package keys

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"

	"github.com/koshin-ota/koshin/internal/atomicfile"
)

// Public key files carry one PKIX "PUBLIC KEY" PEM block. Key ceremonies
// pass them between key holders and the repository administrator: each
// holder exports the public half of a key that never leaves its token or
// encrypted file, and the administrator lists it in root (CCDS UPC07, UPC11).
const (
	pemPublicKey     = "PUBLIC KEY"
	maxPublicPEMSize = 16 << 10
)

// ParsePublicKeyPEM decodes exactly one PKIX PUBLIC KEY block holding an
// Ed25519 or ECDSA P-256 key. Text around the block is tolerated (comments
// from other tools); a second block is not, so a file names one key.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	if len(data) > maxPublicPEMSize {
		return nil, fmt.Errorf("public key pem: %d bytes exceeds %d", len(data), maxPublicPEMSize)
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("public key pem: no PEM block")
	}
	if block.Type != pemPublicKey {
		return nil, fmt.Errorf("public key pem: block type %q (want %q)", block.Type, pemPublicKey)
	}
	if len(block.Headers) != 0 {
		return nil, fmt.Errorf("public key pem: unexpected PEM headers")
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, fmt.Errorf("public key pem: more than one PEM block")
	}
	pub, err := parsePKIX(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key pem: %w", err)
	}
	return pub, nil
}

// MarshalPublicKeyPEM encodes a public key as a PKIX PUBLIC KEY block.
func MarshalPublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := marshalPKIX(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: der}), nil
}

// ReadPublicKeyPEM reads a public key file written by WritePublicKeyPEM or
// by `openssl pkey -pubout`.
func ReadPublicKeyPEM(path string) (crypto.PublicKey, error) {
	data, err := readLimited(path, maxPublicPEMSize)
	if err != nil {
		return nil, err
	}
	pub, err := ParsePublicKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}

// WritePublicKeyPEM atomically writes (or replaces) a public key file,
// readable by everyone: it holds nothing secret.
func WritePublicKeyPEM(path string, pub crypto.PublicKey) error {
	data, err := MarshalPublicKeyPEM(pub)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o644)
}

func parsePKIX(der []byte) (crypto.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	if _, err := AlgorithmOf(pub); err != nil {
		return nil, err
	}
	return pub, nil
}

func marshalPKIX(pub crypto.PublicKey) ([]byte, error) {
	if _, err := AlgorithmOf(pub); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	return der, nil
}

// readLimited reads a regular file of at most limit bytes. It refuses
// larger files rather than truncating them, and checks the type before
// opening so a mistyped path naming a FIFO or device cannot block.
func readLimited(path string, limit int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("read key %s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("read key %s: larger than %d bytes", path, limit)
	}
	return data, nil
}
