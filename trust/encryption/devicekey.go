package encryption

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/koshin-ota/koshin/trust"
)

// GenerateDeviceKey returns a new X25519 key pair for receiving wrapped
// content keys (EN 303 645 5.4-4: unique per device).
//
// This key is deliberately separate from the device's TLS/signing key. Using
// one key for signatures and for decryption invites cross-protocol attacks
// (an oracle in one protocol answers questions in the other), couples
// lifecycles that differ (the identity key may be sign-only inside a TPM; the
// encryption key is replaced on factory reset so a new owner cannot read
// payloads wrapped for the old one), and means one compromise gives both
// capabilities (EN 303 645 5.5-8).
func GenerateDeviceKey() (*ecdh.PrivateKey, error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate device encryption key: %w", err)
	}
	return k, nil
}

// devicePublicKeyTextLen is the length of 32 bytes in padded standard base64.
const devicePublicKeyTextLen = 44

// MarshalDevicePublicKey encodes a device's X25519 public key as the standard
// base64 of its 32 raw bytes (the form WireGuard uses), for the enrollment
// API's encryption_key field.
func MarshalDevicePublicKey(pub *ecdh.PublicKey) (string, error) {
	if pub == nil || pub.Curve() != ecdh.X25519() {
		return "", fmt.Errorf("%w: device encryption key must be X25519", trust.ErrInvalid)
	}
	return base64.StdEncoding.EncodeToString(pub.Bytes()), nil
}

// ParseDevicePublicKey decodes the text form from MarshalDevicePublicKey. It
// accepts exactly one encoding per key: strict padded base64 of 32 bytes, the
// top bit clear and the value below the field prime. It refuses low-order
// points, for which every wrapped key would be readable by anyone
// (EN 303 645 5.13-1).
func ParseDevicePublicKey(s string) (*ecdh.PublicKey, error) {
	if len(s) != devicePublicKeyTextLen {
		return nil, fmt.Errorf("%w: device encryption key must be %d characters of base64", trust.ErrInvalid, devicePublicKeyTextLen)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("%w: device encryption key is not base64 of 32 bytes", trust.ErrInvalid)
	}
	if !canonicalX25519(raw) {
		return nil, fmt.Errorf("%w: device encryption key is not a canonical X25519 encoding", trust.ErrInvalid)
	}
	pub, err := ecdh.X25519().NewPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: device encryption key: %v", trust.ErrInvalid, err)
	}
	// Every clamped X25519 scalar is a multiple of the cofactor, so the
	// exchange with any fixed key yields all zeros, which ecdh reports as an
	// error, exactly for the low-order points.
	if _, err := lowOrderProbe.ECDH(pub); err != nil {
		return nil, fmt.Errorf("%w: device encryption key is a low-order point", trust.ErrInvalid)
	}
	return pub, nil
}

// lowOrderProbe is a fixed, public scalar used only to detect low-order
// points; it protects nothing.
var lowOrderProbe = func() *ecdh.PrivateKey {
	k, err := ecdh.X25519().NewPrivateKey([]byte("koshin low-order point probe v1!"))
	if err != nil {
		panic(err) // 32 constant bytes: cannot fail
	}
	return k
}()

// canonicalX25519 reports whether the little-endian u-coordinate has its top
// bit clear and is below p = 2^255 - 19. RFC 7748 decoders ignore the top bit
// and reduce mod p; refusing those forms keeps one text per key.
func canonicalX25519(u []byte) bool {
	if u[31]&0x80 != 0 {
		return false
	}
	// u >= p only if u[31] == 0x7f, u[1..30] are all 0xff and u[0] >= 0xed.
	if u[31] != 0x7f || u[0] < 0xed {
		return true
	}
	for _, b := range u[1:31] {
		if b != 0xff {
			return true
		}
	}
	return false
}
