package password

import (
	"crypto/rand"
	"errors"
	"strings"
	"unicode/utf8"
)

// Policy limits. Length is what makes a password strong (NIST SP 800-63B
// §5.1.1.2); composition rules mostly produce "Passw0rd!". The upper bound
// only caps the work one login can cause.
const (
	MinLength = 12   // characters
	MaxLength = 1024 // bytes
)

// ErrPolicy is wrapped by every Validate error; the message says what to fix.
var ErrPolicy = errors.New("password does not meet the policy")

// Validate checks a new password (CCDS STS15, EN 303 645 5.1-1): at least
// MinLength characters of valid UTF-8, at most MaxLength bytes, not a single
// repeated character, and not containing the account name.
func Validate(pw, account string) error {
	switch {
	case len(pw) > MaxLength:
		return policyError("must be at most 1024 bytes")
	case !utf8.ValidString(pw):
		return policyError("must be valid UTF-8")
	case utf8.RuneCountInString(pw) < MinLength:
		return policyError("must be at least 12 characters")
	case strings.Count(pw, pw[:1]) == len(pw):
		return policyError("must not repeat a single character")
	case account != "" && strings.Contains(strings.ToLower(pw), strings.ToLower(account)):
		return policyError("must not contain the account name")
	}
	return nil
}

type policyErr struct{ msg string }

func (e *policyErr) Error() string { return "Password " + e.msg + "." }
func (e *policyErr) Unwrap() error { return ErrPolicy }

func policyError(msg string) error { return &policyErr{msg} }

// generatedAlphabet avoids look-alike characters (0/O, 1/l/I) because
// generated passwords are read off a terminal and typed by people.
const generatedAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// Generate returns a random password of 20 characters from a 57-symbol
// alphabet (about 116 bits), for accounts created from the command line. It
// is random per account, never derived from anything (EN 303 645 5.1-2).
func Generate() string {
	out := make([]byte, defaultGeneratedLength)
	for i := range out {
		out[i] = generatedAlphabet[uniform(len(generatedAlphabet))]
	}
	return string(out)
}

// uniform returns a uniformly random int in [0, n) by rejection sampling, so
// that no symbol is more likely than another.
func uniform(n int) int {
	limit := 256 - 256%n
	var b [1]byte
	for {
		rand.Read(b[:])
		if int(b[0]) < limit {
			return int(b[0]) % n
		}
	}
}
