// Package password hashes operator passwords with argon2id (RFC 9106) and
// checks them against koshin's password policy. Stores keep only the
// encoded hash (PHC string format), never the password (EN 303 645 5.1-3,
// OTA trust framework 17).
//
// Hashing is deliberately expensive in memory as well as time, which is
// what makes a stolen hash database slow to crack on GPUs. The flip side is
// that a burst of logins could exhaust the server's memory, so at most
// GOMAXPROCS hashes run at once and the rest wait their turn. Login
// handlers should also call Equalize for unknown user names so that an
// attacker cannot tell them from wrong passwords by timing.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// Default is RFC 9106's second recommended option (64 MiB, 3 passes), for
// servers that cannot spare 2 GiB per login.
var Default = Params{Memory: 64 * 1024, Time: 3, Threads: 4, SaltLen: 16, KeyLen: 32}

// Bounds on parameters read from an encoded hash: a corrupted or hostile
// hash string must not make Verify allocate gigabytes or spin for minutes.
const (
	maxMemory  = 1 << 20 // 1 GiB
	maxTime    = 64
	minSalt    = 8
	maxSalt    = 64
	minKey     = 16
	maxKey     = 64
	maxEncoded = 256
)

// ErrMalformed is returned for an encoded hash that cannot be parsed or has
// parameters out of bounds.
var ErrMalformed = errors.New("password: malformed hash")

// slots bounds concurrent hashing; see the package comment.
var slots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))

// Hash hashes password with Default parameters and a fresh random salt.
func Hash(password string) (string, error) { return Default.Hash(password) }

// Hash hashes password with p and a fresh random salt and returns the
// encoded form: $argon2id$v=19$m=…,t=…,p=…$salt$key (unpadded base64).
func (p Params) Hash(password string) (string, error) {
	if err := p.validate(); err != nil {
		return "", err
	}
	if len(password) > MaxLen {
		return "", fmt.Errorf("password: longer than %d bytes", MaxLen)
	}
	salt := make([]byte, p.SaltLen)
	rand.Read(salt)
	key := p.key(password, salt)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

var b64 = base64.RawStdEncoding

func (p Params) key(password string, salt []byte) []byte {
	slots <- struct{}{}
	defer func() { <-slots }()
	return argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
}

func (p Params) validate() error {
	if p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory || p.Time < 1 || p.Time > maxTime || p.Threads < 1 ||
		p.SaltLen < minSalt || p.SaltLen > maxSalt || p.KeyLen < minKey || p.KeyLen > maxKey {
		return ErrMalformed
	}
	return nil
}

// Verify reports whether password matches the encoded hash, in time
// independent of where the two differ. A malformed hash is an error, never
// a match.
func Verify(password, encoded string) (bool, error) {
	p, salt, key, err := Decode(encoded)
	if err != nil {
		return false, err
	}
	if len(password) > MaxLen {
		return false, nil
	}
	got := p.key(password, salt)
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// NeedsRehash reports whether encoded was made with parameters other than
// p, so that a login can upgrade it after a successful Verify.
func NeedsRehash(encoded string, p Params) bool {
	q, _, _, err := Decode(encoded)
	return err != nil || q.Memory != p.Memory || q.Time != p.Time || q.Threads != p.Threads || q.KeyLen != p.KeyLen
}

// Decode parses an encoded argon2id hash and bounds its parameters.
func Decode(encoded string) (p Params, salt, key []byte, err error) {
	if len(encoded) > maxEncoded {
		return p, nil, nil, ErrMalformed
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, ErrMalformed
	}
	if p, err = parseParams(parts[3]); err != nil {
		return p, nil, nil, err
	}
	if salt, err = b64.Strict().DecodeString(parts[4]); err != nil {
		return p, nil, nil, ErrMalformed
	}
	if key, err = b64.Strict().DecodeString(parts[5]); err != nil {
		return p, nil, nil, ErrMalformed
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	if err := p.validate(); err != nil {
		return p, nil, nil, err
	}
	return p, salt, key, nil
}

// parseParams reads "m=…,t=…,p=…" exactly in that order.
func parseParams(s string) (Params, error) {
	var p Params
	fields := strings.Split(s, ",")
	if len(fields) != 3 {
		return p, ErrMalformed
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(fields[i], name)
		if !ok || v == "" || v[0] == '+' || (len(v) > 1 && v[0] == '0') {
			return p, ErrMalformed
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, ErrMalformed
		}
		vals[i] = n
	}
	if vals[2] > 255 {
		return p, ErrMalformed
	}
	return Params{Memory: uint32(vals[0]), Time: uint32(vals[1]), Threads: uint8(vals[2])}, nil
}

var (
	dummyOnce sync.Once
	dummyHash string
)

// Equalize spends the time of one Verify for a login whose user does not
// exist, so that response times do not reveal which user names do.
func Equalize(password string) {
	dummyOnce.Do(func() { dummyHash, _ = Hash("koshin-equalize") })
	Verify(password, dummyHash)
}
