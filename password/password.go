// Package password hashes operator passwords with Argon2id (RFC 9106) and
// checks them against a policy. Hashes are stored in the PHC string format
//
//	$argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash>
//
// (standard base64 without padding), so that the cost parameters travel with
// each hash and can be raised later without invalidating old ones
// (NeedsRehash). Stores keep only this string, never the password (OTA trust
// framework 17, EN 303 645 5.1-3).
//
// Decoding bounds every parameter, so a tampered or hostile hash in the
// database cannot make a login allocate gigabytes or spin for minutes.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are Argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultParams follow RFC 9106's second recommended option scaled to a
// small server: 64 MiB, 3 passes. One hash takes roughly 100 ms on one core,
// slow enough to make offline guessing expensive; callers bound how many run
// at once so that a login flood cannot exhaust memory.
var DefaultParams = Params{Memory: 64 << 10, Time: 3, Threads: 2, SaltLen: 16, KeyLen: 32}

// Bounds accepted when decoding a stored hash.
const (
	minMemory, maxMemory   = 8, 1 << 20 // KiB: argon2 minimum (8·p) … 1 GiB
	maxTime                = 16
	minSalt, maxSalt       = 8, 64
	minKey, maxKey         = 16, 64
	maxThreads             = 16
	maxEncodedLen          = 512
	argonVersion           = argon2.Version
	prefix                 = "$argon2id$"
	phcFields              = 6 // "", "argon2id", "v=19", params, salt, hash
	defaultGeneratedLength = 20
)

// ErrMalformed is returned for a stored hash that is not an Argon2id PHC
// string within bounds.
var ErrMalformed = errors.New("password: malformed hash")

func (p Params) validate() error {
	switch {
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("%w: threads %d", ErrMalformed, p.Threads)
	case p.Memory < minMemory*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("%w: memory %d KiB", ErrMalformed, p.Memory)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("%w: time %d", ErrMalformed, p.Time)
	case p.SaltLen < minSalt || p.SaltLen > maxSalt:
		return fmt.Errorf("%w: salt length %d", ErrMalformed, p.SaltLen)
	case p.KeyLen < minKey || p.KeyLen > maxKey:
		return fmt.Errorf("%w: key length %d", ErrMalformed, p.KeyLen)
	}
	return nil
}

// Hash returns the PHC-encoded Argon2id hash of pw with a fresh random salt.
// It does not apply the policy; call Validate first for new passwords.
func Hash(pw string, p Params) (string, error) {
	if err := p.validate(); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	rand.Read(salt) // never fails (crypto/rand documents a fatal error otherwise)
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return encode(p, salt, key), nil
}

func encode(p Params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("%sv=%d$m=%d,t=%d,p=%d$%s$%s", prefix, argonVersion,
		p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Verify reports whether pw matches encoded. The comparison is constant-time;
// a malformed hash returns ErrMalformed and never matches.
func Verify(encoded, pw string) (bool, error) {
	p, salt, key, err := decode(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// NeedsRehash reports whether encoded was made with parameters other than p,
// so a successful login can upgrade it.
func NeedsRehash(encoded string, p Params) bool {
	q, _, _, err := decode(encoded)
	return err != nil || q != p
}

func decode(encoded string) (p Params, salt, key []byte, err error) {
	if len(encoded) > maxEncodedLen || !strings.HasPrefix(encoded, prefix) {
		return p, nil, nil, ErrMalformed
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != phcFields || parts[2] != "v="+strconv.Itoa(argonVersion) {
		return p, nil, nil, ErrMalformed
	}
	if p, err = parseParams(parts[3]); err != nil {
		return p, nil, nil, err
	}
	b64 := base64.RawStdEncoding.Strict()
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return p, nil, nil, ErrMalformed
	}
	if key, err = b64.DecodeString(parts[5]); err != nil {
		return p, nil, nil, ErrMalformed
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, p.validate()
}

// parseParams reads "m=M,t=T,p=P" in exactly that order and form, so that
// one hash has one encoding.
func parseParams(s string) (Params, error) {
	var p Params
	fields := strings.Split(s, ",")
	if len(fields) != 3 {
		return p, ErrMalformed
	}
	vals := make([]uint64, 3)
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(fields[i], name)
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || strconv.FormatUint(n, 10) != v {
			return p, ErrMalformed
		}
		vals[i] = n
	}
	if vals[2] > maxThreads {
		return p, ErrMalformed
	}
	p.Memory, p.Time, p.Threads = uint32(vals[0]), uint32(vals[1]), uint8(vals[2])
	return p, nil
}
