package agent

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/koshin-ota/koshin/trust"
)

// Limits on journal contents. The journal is local state, but it is parsed
// at every start-up and must not be able to exhaust a small device if the
// storage returns garbage.
const (
	MaxPayloadLength = 1 << 40 // 1 TiB
	maxTargetName    = 1024
	maxURL           = 4096
	maxCheckpoint    = 1024
	maxReason        = 128
	maxDetail        = 1024
)

// Target is one verified install instruction: the signed length, hashes and
// custom fields of an image-repository target that the director assigned to
// this device. The engine copies it from the verifier's plan into the
// journal, so a resumed download is checked against the same signed values.
type Target struct {
	Name   string `json:"name"`
	URL    string `json:"url"`
	Length int64  `json:"length"`
	// Hashes maps algorithm ("sha256", "sha512") to the lowercase hex digest.
	Hashes     map[string]string  `json:"hashes"`
	Custom     trust.TargetCustom `json:"custom"`
	WrappedKey []byte             `json:"wrapped_key,omitempty"`
}

// SHA256 returns the signed SHA-256 (hex).
func (t *Target) SHA256() string { return t.Hashes["sha256"] }

// Encrypted reports whether the payload is encrypted (trust/encryption).
func (t *Target) Encrypted() bool { return t.Custom.Encryption != "" }

// Plain is the signed length and SHA-256 of the payload as installed: for
// an encrypted target the plaintext's (signed in its custom fields), else
// the target's own.
func (t *Target) Plain() Digest {
	if t.Encrypted() {
		return Digest{Length: t.Custom.PlaintextLength, SHA256: t.Custom.PlaintextSHA256}
	}
	return Digest{Length: t.Length, SHA256: t.SHA256()}
}

// Validate checks form and size; it does not (cannot) check signatures.
func (t *Target) Validate() error {
	if t.Name == "" || len(t.Name) > maxTargetName || strings.ContainsAny(t.Name, "\x00\n") {
		return fmt.Errorf("%w: target name", trust.ErrInvalid)
	}
	if len(t.URL) > maxURL {
		return fmt.Errorf("%w: target URL longer than %d bytes", trust.ErrInvalid, maxURL)
	}
	if t.Length <= 0 || t.Length > MaxPayloadLength {
		return fmt.Errorf("%w: target length %d out of range", trust.ErrInvalid, t.Length)
	}
	if len(t.Hashes) == 0 || len(t.Hashes) > 4 {
		return fmt.Errorf("%w: target needs 1-4 hashes", trust.ErrInvalid)
	}
	for alg, h := range t.Hashes {
		if err := validHex(alg, h); err != nil {
			return err
		}
	}
	if len(t.SHA256()) != 64 {
		return fmt.Errorf("%w: target has no sha256", trust.ErrInvalid)
	}
	if len(t.WrappedKey) > trust.MaxWrappedKeyLen {
		return fmt.Errorf("%w: wrapped key too long", trust.ErrInvalid)
	}
	return t.Custom.Validate()
}

func validHex(alg, h string) error {
	if len(alg) == 0 || len(alg) > 16 || len(h) < 32 || len(h) > 128 {
		return fmt.Errorf("%w: hash %q", trust.ErrInvalid, alg)
	}
	if _, err := hex.DecodeString(h); err != nil || strings.ToLower(h) != h {
		return fmt.Errorf("%w: hash %s is not lowercase hex", trust.ErrInvalid, alg)
	}
	return nil
}

// Digest describes bytes stored at a destination.
type Digest struct {
	Length int64  `json:"length"`
	SHA256 string `json:"sha256,omitempty"`
}

func (d *Digest) validate() error {
	if d.Length < 0 || d.Length > MaxPayloadLength*16 {
		return fmt.Errorf("%w: digest length", trust.ErrInvalid)
	}
	if d.SHA256 != "" {
		return validHex("sha256", d.SHA256)
	}
	return nil
}
