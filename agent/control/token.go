package control

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/koshin-ota/koshin/agent/identity"
	"github.com/koshin-ota/koshin/internal/atomicfile"
)

// tokenLen is the token's length: 32 random bytes in unpadded base64url.
const tokenLen = 43

// LoadOrCreateToken returns the control API token stored at path,
// generating it at first start: 256 bits from the system's random source,
// written atomically with mode 0600. There is no default token
// (EN 303 645 5.1-1, 5.1-2). A token file that others may read is
// refused: its secret must be assumed known.
func LoadOrCreateToken(path string) (string, error) {
	tok, err := ReadToken(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return tok, err
	}
	b := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		return "", fmt.Errorf("control token: %w", err)
	}
	tok = base64.RawURLEncoding.EncodeToString(b)
	if err := atomicfile.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("control token: %w", err)
	}
	return tok, nil
}

// ReadToken reads a token file, refusing one readable by group or others.
func ReadToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("control token %s: must be a regular file of mode 0600 (has %v); remove it to generate a new token", path, fi.Mode())
	}
	b := make([]byte, 128)
	n, _ := io.ReadFull(f, b)
	tok := strings.TrimSpace(string(b[:n]))
	if len(tok) != tokenLen {
		return "", fmt.Errorf("control token %s: malformed; remove it to generate a new token", path)
	}
	return tok, nil
}

// rotateToken destroys the token file and creates a new token.
func rotateToken(path string) (string, error) {
	if _, err := identity.Destroy(path); err != nil {
		return "", err
	}
	return LoadOrCreateToken(path)
}

// tokenEqual compares in constant time.
func tokenEqual(got, want string) bool {
	return len(want) == tokenLen && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
