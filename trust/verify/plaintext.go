package verify

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/encryption"
)

// DeviceKey is what a device needs to open releases encrypted to it: its
// X25519 private key and the device ID the director bound the wrapped key to.
type DeviceKey struct {
	ID      string
	Private *ecdh.PrivateKey
}

// OpenPlaintext turns a verified payload stream into the release's verified
// plaintext. For an unencrypted release it returns payload unchanged. For an
// encrypted one it unwraps the content key the director wrapped for this
// device and this release, decrypts chunk by chunk, and checks the plaintext
// against the signed plaintext_length and plaintext_sha256.
//
// payload must be a PayloadReader (or equivalent) so that the ciphertext is
// checked against the signed length and hashes too. The plaintext check is
// not redundant: AES-GCM does not commit to its key, so without it a
// compromised director could wrap a different key that decrypts the same
// ciphertext to other authenticated-looking bytes. As with PayloadReader, the
// data are unverified until Read returns io.EOF.
func OpenPlaintext(payload io.Reader, in Install, key *DeviceKey) (io.Reader, error) {
	switch in.Custom.Encryption {
	case "":
		return payload, nil
	case trust.EncryptionScheme:
	default:
		return nil, fmt.Errorf("%w: %q: unknown encryption scheme %q", trust.ErrInvalid, in.Name, in.Custom.Encryption)
	}
	contentKey, err := unwrapFor(in, key)
	if err != nil {
		return nil, err
	}
	dec, err := encryption.NewReader(payload, contentKey)
	if err != nil {
		return nil, err
	}
	return newPlainChecker(dec, in)
}

func unwrapFor(in Install, key *DeviceKey) ([]byte, error) {
	if key == nil || key.Private == nil {
		return nil, fmt.Errorf("%w: %q is encrypted and this device has no encryption key", trust.ErrDecrypt, in.Name)
	}
	if len(in.WrappedKey) == 0 {
		return nil, fmt.Errorf("%w: %q is encrypted but the director sent no key for this device", trust.ErrDecrypt, in.Name)
	}
	releaseID, err := encryption.ReleaseID(in.Name, in.Hashes["sha256"])
	if err != nil {
		return nil, err
	}
	return encryption.UnwrapKey(key.Private, in.WrappedKey, key.ID, releaseID)
}

// plainChecker caps the plaintext at its signed length and checks its
// signed SHA-256 at EOF.
type plainChecker struct {
	r      io.Reader
	name   string
	length int64
	want   []byte
	n      int64
	h      hash.Hash
	err    error
}

func newPlainChecker(r io.Reader, in Install) (*plainChecker, error) {
	want, err := hex.DecodeString(in.Custom.PlaintextSHA256)
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("%w: %q: plaintext_sha256 is not a SHA-256", trust.ErrInvalid, in.Name)
	}
	return &plainChecker{r: r, name: in.Name, length: in.Custom.PlaintextLength, want: want, h: sha256.New()}, nil
}

func (c *plainChecker) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.length {
		c.err = fmt.Errorf("%w: %q plaintext exceeds its signed length %d", trust.ErrTooLong, c.name, c.length)
		return 0, c.err
	}
	c.h.Write(p[:n])
	if err == io.EOF {
		err = c.finish()
	}
	if err != nil {
		c.err = err
	}
	return n, err
}

func (c *plainChecker) finish() error {
	if c.n != c.length {
		return fmt.Errorf("%w: %q plaintext is %d bytes, signed %d", trust.ErrMismatch, c.name, c.n, c.length)
	}
	if !bytes.Equal(c.h.Sum(nil), c.want) {
		return fmt.Errorf("%w: %q plaintext sha256 differs from the signed one", trust.ErrMismatch, c.name)
	}
	return io.EOF
}
