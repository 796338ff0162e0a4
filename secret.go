package koshin

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// SecretBytes is the entropy of enrollment and API token secrets.
const SecretBytes = 32

// MaxSecretLen bounds a presented secret before it is hashed.
const MaxSecretLen = 256

// NewSecret returns a fresh random token secret (base64url, no padding). It
// is shown to its holder once; stores keep only HashSecret of it.
func NewSecret() string {
	b := make([]byte, SecretBytes)
	rand.Read(b) // never fails (crypto/rand documents a fatal error otherwise)
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashSecret is what stores keep of a token secret. Plain SHA-256 is the
// right tool here, unlike for passwords: the secret carries 256 random bits,
// so a stolen hash cannot be brute-forced and a slow hash would only slow
// every authenticated request.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func validateSecretHash(h []byte) error {
	if len(h) != sha256.Size {
		return Errorf(EINVALID, "Token hash must be %d bytes.", sha256.Size)
	}
	return nil
}
