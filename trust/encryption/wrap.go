package encryption

import (
	"crypto/ecdh"
	"crypto/hpke"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"unicode/utf8"

	"github.com/koshin-ota/koshin/trust"
)

const (
	// WrappedKeySize is the length of a wrapped content key: the 32-byte
	// X25519 encapsulated key, the 32-byte sealed content key and its 16-byte
	// tag. It is well below trust.MaxWrappedKeyLen.
	WrappedKeySize = 32 + KeySize + TagSize
	// MaxReleaseIDLen bounds a release ID (see ReleaseID).
	MaxReleaseIDLen = 1024

	// wrapVersion opens the HPKE info, so keys wrapped under a future
	// encoding can never open under this one.
	wrapVersion = "koshin-content-key-wrap-v1"
)

// The HPKE suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, in
// base mode. Base mode does not authenticate the sender, and need not: the
// wrapped key reaches the device inside director metadata that the device has
// verified, and the payload is checked against the image repository's signed
// hashes whatever key it decrypts with.
var (
	wrapKDF  = hpke.HKDFSHA256()
	wrapAEAD = hpke.AES256GCM()
)

// ReleaseID names one encrypted release for WrapKey and UnwrapKey: the TUF
// target path and the target's signed SHA-256 (of the ciphertext), as
// "PATH@sha256:HEX". Director and device both take these from signed target
// metadata, so they derive the same string.
func ReleaseID(targetPath string, targetSHA256 []byte) (string, error) {
	if targetPath == "" {
		return "", fmt.Errorf("%w: empty target path", trust.ErrInvalid)
	}
	if len(targetSHA256) != 32 {
		return "", fmt.Errorf("%w: target sha256 is %d bytes, want 32", trust.ErrInvalid, len(targetSHA256))
	}
	id := targetPath + "@sha256:" + hex.EncodeToString(targetSHA256)
	if err := validateReleaseID(id); err != nil {
		return "", err
	}
	return id, nil
}

// WrapKey seals contentKey to one device's X25519 public key for one release
// (EN 303 645 5.5-7, 5.5-8). The device ID and release ID are bound into the
// HPKE info, so the result opens only on that device, under that device ID,
// for that release.
func WrapKey(recipient *ecdh.PublicKey, contentKey []byte, deviceID, releaseID string) ([]byte, error) {
	if len(contentKey) != KeySize {
		return nil, fmt.Errorf("%w: content key is %d bytes, want %d", trust.ErrInvalid, len(contentKey), KeySize)
	}
	if recipient == nil || recipient.Curve() != ecdh.X25519() {
		return nil, fmt.Errorf("%w: device encryption key must be X25519", trust.ErrInvalid)
	}
	info, err := wrapInfo(deviceID, releaseID)
	if err != nil {
		return nil, err
	}
	pk, err := hpke.NewDHKEMPublicKey(recipient)
	if err != nil {
		return nil, fmt.Errorf("%w: device encryption key: %v", trust.ErrInvalid, err)
	}
	wrapped, err := hpke.Seal(pk, wrapKDF, wrapAEAD, info, contentKey)
	if err != nil {
		// Seal fails only on a low-order public key, which
		// ParseDevicePublicKey refuses at enrollment.
		return nil, fmt.Errorf("%w: wrap content key: %v", trust.ErrInvalid, err)
	}
	return wrapped, nil
}

// UnwrapKey opens a key wrapped by WrapKey with the device's private key.
// Every failure to open wraps trust.ErrDecrypt: another device's key, another
// device ID or release ID, or a modified wrapped key all look the same.
func UnwrapKey(priv *ecdh.PrivateKey, wrapped []byte, deviceID, releaseID string) ([]byte, error) {
	if priv == nil || priv.Curve() != ecdh.X25519() {
		return nil, fmt.Errorf("%w: device encryption key must be X25519", trust.ErrInvalid)
	}
	if len(wrapped) > trust.MaxWrappedKeyLen {
		return nil, fmt.Errorf("%w: wrapped key is %d bytes, limit %d", trust.ErrInvalid, len(wrapped), trust.MaxWrappedKeyLen)
	}
	info, err := wrapInfo(deviceID, releaseID)
	if err != nil {
		return nil, err
	}
	if len(wrapped) != WrappedKeySize {
		return nil, fmt.Errorf("%w: wrapped key is %d bytes, want %d", trust.ErrDecrypt, len(wrapped), WrappedKeySize)
	}
	sk, err := hpke.NewDHKEMPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: device encryption key: %v", trust.ErrInvalid, err)
	}
	key, err := hpke.Open(sk, wrapKDF, wrapAEAD, info, wrapped)
	if err != nil {
		return nil, fmt.Errorf("%w: content key not wrapped for this device and release", trust.ErrDecrypt)
	}
	if len(key) != KeySize {
		// Anyone holding the public key can seal; only the signed director
		// metadata vouches for the sender, so check the size here too.
		return nil, fmt.Errorf("%w: unwrapped key is %d bytes, want %d", trust.ErrDecrypt, len(key), KeySize)
	}
	return key, nil
}

// wrapInfo encodes the HPKE info: version, device ID and release ID, each
// with a 2-byte big-endian length prefix, so no two different (device,
// release) pairs share an encoding.
func wrapInfo(deviceID, releaseID string) ([]byte, error) {
	if err := trust.ValidateID("device ID", deviceID); err != nil {
		return nil, err
	}
	if err := validateReleaseID(releaseID); err != nil {
		return nil, err
	}
	info := make([]byte, 0, 6+len(wrapVersion)+len(deviceID)+len(releaseID))
	for _, field := range []string{wrapVersion, deviceID, releaseID} {
		info = binary.BigEndian.AppendUint16(info, uint16(len(field)))
		info = append(info, field...)
	}
	return info, nil
}

func validateReleaseID(id string) error {
	if len(id) == 0 || len(id) > MaxReleaseIDLen || !utf8.ValidString(id) {
		return fmt.Errorf("%w: release ID must be 1-%d bytes of UTF-8", trust.ErrInvalid, MaxReleaseIDLen)
	}
	return nil
}
