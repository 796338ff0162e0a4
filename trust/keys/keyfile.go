package keys

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// The key file format, version 1. A JSON object whose header (format,
// algorithm, key ID, public key, KDF and cipher) is readable without the
// passphrase, so keys can be listed and their public halves exported, and
// whose private key is sealed with AES-256-GCM under an Argon2id-derived key.
// The header is the GCM additional data: changing any header field makes
// decryption fail (EN 303 645 5.4-1, CCDS UPC11).
//
//	{
//	  "format": "koshin-key-v1",
//	  "algorithm": "ed25519" | "ecdsa-p256",
//	  "key_id": TUF key ID (hex SHA-256 of the canonical TUF key),
//	  "public": base64 PKIX DER,
//	  "kdf": {"name": "argon2id", "time": 3, "memory_kib": 65536, "threads": 2, "salt": base64},
//	  "cipher": "aes-256-gcm",
//	  "nonce": base64 (12 bytes),
//	  "ciphertext": base64 (sealed PKCS#8 DER)
//	}
const (
	keyFileFormat = "koshin-key-v1"
	cipherName    = "aes-256-gcm"
	aadPrefix     = "koshin-key-v1 header\n"

	// MaxKeyFileSize bounds what readers load; a real key file is under 1 KiB.
	MaxKeyFileSize = 64 << 10

	nonceLen         = 12
	gcmTagLen        = 16
	maxPublicLen     = 512  // PKIX DER: 44 bytes for Ed25519, 91 for P-256
	maxCiphertextLen = 1024 // PKCS#8 DER + tag: ~64 for Ed25519, ~154 for P-256
)

type kdfJSON struct {
	Name      string `json:"name"`
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
	Salt      []byte `json:"salt"`
}

// fileHeader is everything the AEAD authenticates but does not hide.
type fileHeader struct {
	Format    string    `json:"format"`
	Algorithm Algorithm `json:"algorithm"`
	KeyID     string    `json:"key_id"`
	Public    []byte    `json:"public"`
	KDF       kdfJSON   `json:"kdf"`
	Cipher    string    `json:"cipher"`
}

type fileJSON struct {
	fileHeader
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

// KeyFile is a parsed and validated key file whose private key is still
// sealed. Its public half is usable without the passphrase but is not
// authenticated until Decrypt succeeds: whoever can write the file can
// replace the header consistently.
type KeyFile struct {
	f   fileJSON
	pub crypto.PublicKey
}

// Algorithm returns the key's algorithm.
func (k *KeyFile) Algorithm() Algorithm { return k.f.Algorithm }

// KeyID returns the TUF key ID recorded in the file, checked against the
// public key.
func (k *KeyFile) KeyID() string { return k.f.KeyID }

// Public returns the public key from the header.
func (k *KeyFile) Public() crypto.PublicKey { return k.pub }

// KDF returns the Argon2id costs the file was sealed with.
func (k *KeyFile) KDF() KDFParams {
	return KDFParams{Time: k.f.KDF.Time, MemoryKiB: k.f.KDF.MemoryKiB, Threads: k.f.KDF.Threads}
}

// MarshalJSON encodes the key file in its on-disk form.
func (k *KeyFile) MarshalJSON() ([]byte, error) {
	return json.MarshalIndent(&k.f, "", "  ")
}

// ParseKeyFile decodes and validates a key file without decrypting it. It
// runs no key derivation, so it is cheap on hostile input.
func ParseKeyFile(data []byte) (*KeyFile, error) {
	if len(data) > MaxKeyFileSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrInvalidKeyFile, len(data), MaxKeyFileSize)
	}
	var f fileJSON
	if err := decodeStrict(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKeyFile, err)
	}
	pub, err := f.validate()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKeyFile, err)
	}
	return &KeyFile{f: f, pub: pub}, nil
}

// decodeStrict rejects unknown fields and trailing data, so that a file
// either means exactly one thing or nothing.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after key file object")
	}
	return nil
}

func (f *fileJSON) validate() (crypto.PublicKey, error) {
	if f.Format != keyFileFormat {
		return nil, fmt.Errorf("unsupported format %q (want %q)", f.Format, keyFileFormat)
	}
	pub, err := f.validatePublic()
	if err != nil {
		return nil, err
	}
	if err := f.KDF.validate(); err != nil {
		return nil, err
	}
	if f.Cipher != cipherName {
		return nil, fmt.Errorf("unsupported cipher %q (want %q)", f.Cipher, cipherName)
	}
	if len(f.Nonce) != nonceLen {
		return nil, fmt.Errorf("nonce of %d bytes (want %d)", len(f.Nonce), nonceLen)
	}
	if len(f.Ciphertext) <= gcmTagLen || len(f.Ciphertext) > maxCiphertextLen {
		return nil, fmt.Errorf("ciphertext of %d bytes outside (%d, %d]", len(f.Ciphertext), gcmTagLen, maxCiphertextLen)
	}
	return pub, nil
}

// validatePublic checks the public key, its algorithm and that key_id is
// the TUF key ID of that key, so a listing never shows a stale ID.
func (f *fileJSON) validatePublic() (crypto.PublicKey, error) {
	if err := f.Algorithm.Validate(); err != nil {
		return nil, err
	}
	if len(f.Public) == 0 || len(f.Public) > maxPublicLen {
		return nil, fmt.Errorf("public key of %d bytes outside [1, %d]", len(f.Public), maxPublicLen)
	}
	pub, err := parsePKIX(f.Public)
	if err != nil {
		return nil, err
	}
	if alg, _ := AlgorithmOf(pub); alg != f.Algorithm {
		return nil, fmt.Errorf("public key is %s, header says %s", alg, f.Algorithm)
	}
	id, err := KeyID(pub)
	if err != nil {
		return nil, err
	}
	if f.KeyID != id {
		return nil, fmt.Errorf("key_id %q does not match the public key (%s)", f.KeyID, id)
	}
	return pub, nil
}

func (k *kdfJSON) validate() error {
	if k.Name != kdfName {
		return fmt.Errorf("unsupported kdf %q (want %q)", k.Name, kdfName)
	}
	if len(k.Salt) < minSaltLen || len(k.Salt) > maxSaltLen {
		return fmt.Errorf("kdf salt of %d bytes outside [%d, %d]", len(k.Salt), minSaltLen, maxSaltLen)
	}
	return KDFParams{Time: k.Time, MemoryKiB: k.MemoryKiB, Threads: k.Threads}.Validate()
}

// aad is the additional data GCM authenticates: the header re-encoded from
// its decoded values, so equivalent spellings of one header (base64 line
// breaks, key order) authenticate alike and any change of value does not.
func (h *fileHeader) aad() ([]byte, error) {
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode header: %w", err)
	}
	return append([]byte(aadPrefix), b...), nil
}
