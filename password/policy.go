package password

import (
	"strings"
	"unicode/utf8"

	"github.com/koshin-ota/koshin"
)

// Policy limits. Length is what makes a password hard to guess (NIST SP
// 800-63B); composition rules mostly produce predictable substitutions, so
// there are none. The upper bound keeps a request from hashing megabytes.
const (
	MinLen = 12
	MaxLen = 1024
)

// common are passwords that meet the length rule and are still among the
// first an attacker tries.
var common = []string{
	"123456789012", "1234567890123", "password1234", "passwordpassword", "qwertyuiopas",
	"administrator", "koshinkoshin", "changemechangeme", "letmeinletmein", "iloveyou1234",
}

// Check applies the password policy for operator name (CCDS STS15, EN 303
// 645 5.1-1): at least MinLen characters, at most MaxLen bytes, valid
// UTF-8, not a single repeated character, not containing the user name,
// and not a well-known password. Errors are EINVALID with a message that
// says which rule failed.
func Check(name, password string) error {
	switch n := utf8.RuneCountInString(password); {
	case !utf8.ValidString(password):
		return koshin.Errorf(koshin.EINVALID, "Password must be valid UTF-8.")
	case n < MinLen:
		return koshin.Errorf(koshin.EINVALID, "Password must have at least %d characters.", MinLen)
	case len(password) > MaxLen:
		return koshin.Errorf(koshin.EINVALID, "Password must be at most %d bytes.", MaxLen)
	}
	first, _ := utf8.DecodeRuneInString(password)
	if strings.Trim(password, string(first)) == "" {
		return koshin.Errorf(koshin.EINVALID, "Password must not repeat one character.")
	}
	lower := strings.ToLower(password)
	if name != "" && strings.Contains(lower, strings.ToLower(name)) {
		return koshin.Errorf(koshin.EINVALID, "Password must not contain the user name.")
	}
	for _, c := range common {
		if lower == c {
			return koshin.Errorf(koshin.EINVALID, "Password is too common.")
		}
	}
	return nil
}
