// Package totp implements time-based one-time passwords (RFC 6238, on HOTP
// RFC 4226), the optional second factor of operator logins (CCDS ORG08).
// It is small enough to own rather than import: a code is an HMAC of the
// time step, truncated to a few decimal digits.
//
// Authenticator apps read a secret through an otpauth:// URI (URI) and show
// six-digit SHA-1 codes that change every 30 seconds; Default describes that.
// Verify accepts the current step and a small skew either side, and returns
// the step it matched so that callers can refuse a code used before.
package totp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"hash"
	"net/url"
	"strconv"
	"time"
)

// Algorithm is the HMAC hash.
type Algorithm string

const (
	SHA1   Algorithm = "SHA1"
	SHA256 Algorithm = "SHA256"
	SHA512 Algorithm = "SHA512"
)

// Params describe how codes are made.
type Params struct {
	Algorithm Algorithm
	Digits    int           // 6 or 8
	Period    time.Duration // whole seconds
	// Skew is how many steps either side of the current one Verify accepts,
	// for clock drift and typing time.
	Skew int
}

// Default is what common authenticator apps implement.
var Default = Params{Algorithm: SHA1, Digits: 6, Period: 30 * time.Second, Skew: 1}

// SecretLen is the length of secrets from NewSecret (160 bits, RFC 4226's
// recommendation).
const SecretLen = 20

// ErrParams is returned for unsupported parameters.
var ErrParams = errors.New("totp: unsupported parameters")

func (p Params) validate() error {
	if p.Digits != 6 && p.Digits != 8 || p.Period < time.Second || p.Period%time.Second != 0 ||
		p.Skew < 0 || p.Skew > 10 || p.newHash() == nil {
		return ErrParams
	}
	return nil
}

func (p Params) newHash() func() hash.Hash {
	switch p.Algorithm {
	case SHA1:
		return sha1.New
	case SHA256:
		return sha256.New
	case SHA512:
		return sha512.New
	}
	return nil
}

// NewSecret returns a fresh random secret.
func NewSecret() []byte {
	b := make([]byte, SecretLen)
	rand.Read(b) // never fails (crypto/rand documents a fatal error otherwise)
	return b
}

// Step is the RFC 6238 time step T containing t.
func (p Params) Step(t time.Time) uint64 {
	return uint64(t.Unix()) / uint64(p.Period/time.Second)
}

// Code returns the code for t.
func Code(secret []byte, t time.Time, p Params) (string, error) {
	if err := p.validate(); err != nil {
		return "", err
	}
	return hotp(secret, p.Step(t), p), nil
}

// hotp is RFC 4226 §5.3: HMAC the big-endian counter, take four bytes at
// the offset named by the last nibble, drop the sign bit, reduce mod 10^d.
func hotp(secret []byte, counter uint64, p Params) string {
	m := hmac.New(p.newHash(), secret)
	m.Write(binary.BigEndian.AppendUint64(nil, counter))
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1_000_000)
	if p.Digits == 8 {
		mod = 100_000_000
	}
	s := strconv.FormatUint(uint64(v%mod), 10)
	for len(s) < p.Digits {
		s = "0" + s
	}
	return s
}

// Verify reports whether code is valid at t within p.Skew steps, and which
// step it matched. Every candidate is compared in constant time and all are
// computed, so timing does not reveal which step matched. A code of the
// wrong length or with non-digits never matches.
func Verify(secret []byte, code string, t time.Time, p Params) (step uint64, ok bool) {
	if p.validate() != nil || len(code) != p.Digits || !digits(code) || len(secret) == 0 {
		return 0, false
	}
	now := p.Step(t)
	for d := -p.Skew; d <= p.Skew; d++ {
		s := now + uint64(d)
		if d < 0 && now < uint64(-d) {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(hotp(secret, s, p)), []byte(code)) == 1 && !ok {
			step, ok = s, true
		}
	}
	return step, ok
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// EncodeSecret is the base32 (no padding) form authenticator apps accept.
func EncodeSecret(secret []byte) string {
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret)
}

// URI returns the otpauth:// provisioning URI (the Key URI format most
// authenticator apps scan) for account at issuer.
func URI(issuer, account string, secret []byte, p Params) string {
	q := url.Values{}
	q.Set("secret", EncodeSecret(secret))
	q.Set("issuer", issuer)
	q.Set("algorithm", string(p.Algorithm))
	q.Set("digits", strconv.Itoa(p.Digits))
	q.Set("period", strconv.Itoa(int(p.Period/time.Second)))
	u := url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + issuer + ":" + account, RawQuery: q.Encode()}
	return u.String()
}
