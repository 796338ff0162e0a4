package keys

import (
	"bytes"
	"fmt"
	"os"
	"strings"
)

// hasPIN reports whether the configuration says where its PIN comes from.
func (c PKCS11Config) hasPIN() bool { return c.PIN != "" || c.PINSource != "" }

// pin resolves the token PIN from pin-value or pin-source. There is no
// default PIN (EN 303 645 5.4-3).
func (c PKCS11Config) pin() (string, error) {
	if c.PIN != "" {
		return c.PIN, nil
	}
	if name, ok := strings.CutPrefix(c.PINSource, "env:"); ok {
		return pinFromEnv(name)
	}
	if path, ok := strings.CutPrefix(c.PINSource, "file:"); ok {
		return pinFromFile(path)
	}
	return "", fmt.Errorf("%w: pkcs11 uri for token %q has no pin-source or pin-value", ErrNoPassphrase, c.TokenLabel)
}

func pinFromEnv(name string) (string, error) {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return "", fmt.Errorf("%w: pin-source env:%s is not set", ErrNoPassphrase, name)
	}
	return checkPIN(v)
}

// pinFromFile reads the first line of a PIN file.
func pinFromFile(path string) (string, error) {
	data, err := readLimited(path, maxPINLen+2)
	if err != nil {
		return "", fmt.Errorf("pkcs11 pin: %w", err)
	}
	defer clear(data)
	line, _, _ := bytes.Cut(data, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		return "", fmt.Errorf("%w: pin file %s is empty", ErrNoPassphrase, path)
	}
	return checkPIN(string(line))
}

func checkPIN(pin string) (string, error) {
	if len(pin) > maxPINLen || strings.IndexByte(pin, 0) >= 0 {
		return "", fmt.Errorf("pkcs11 pin longer than %d bytes or holding NUL", maxPINLen)
	}
	return pin, nil
}
