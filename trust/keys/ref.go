package keys

import (
	"crypto"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// A key reference names a signing key in configuration and on the command
// line, so the code that signs never cares where the key lives:
//
//	/etc/koshin/keys/targets-1.key        an encrypted key file
//	file:targets-1.key, file:///abs/path  the same, explicitly
//	pkcs11:token=...;object=...?...       a key on a PKCS#11 token (PKCS11Config)
//
// A reference that starts with any other URI scheme is rejected, so that a
// future scheme is never mistaken for a file name. Write file:NAME or
// ./NAME for a file whose name contains a colon.
var schemeRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*):`)

// Open returns the signer a reference names. pass is asked for the key
// file's passphrase, or for a token PIN when the PKCS#11 URI names no PIN
// source. Release signers that implement io.Closer (PKCS#11) with
// CloseSigner when done.
func Open(ref string, pass PassphraseFunc) (crypto.Signer, error) {
	if cfg, ok, err := pkcs11Ref(ref); ok || err != nil {
		if err != nil {
			return nil, err
		}
		return openPKCS11Ref(cfg, pass)
	}
	path, err := fileRef(ref)
	if err != nil {
		return nil, err
	}
	return openFileRef(path, pass)
}

// Public returns the public key a reference names without asking for any
// secret, for listing keys and building root metadata. Key files need no
// passphrase. A PKCS#11 token must be logged in to find its key pair, so a
// PKCS#11 reference needs a pin-source or pin-value.
func Public(ref string) (crypto.PublicKey, error) {
	if cfg, ok, err := pkcs11Ref(ref); ok || err != nil {
		if err != nil {
			return nil, err
		}
		return publicPKCS11(cfg)
	}
	path, err := fileRef(ref)
	if err != nil {
		return nil, err
	}
	return ReadPublicKey(path)
}

// CloseSigner releases what a signer from Open holds (a token session) and
// is a no-op for in-memory keys.
func CloseSigner(s crypto.Signer) error {
	if c, ok := s.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func pkcs11Ref(ref string) (PKCS11Config, bool, error) {
	if !strings.HasPrefix(ref, pkcs11Scheme) {
		return PKCS11Config{}, false, nil
	}
	cfg, err := ParsePKCS11URI(ref)
	return cfg, true, err
}

// fileRef maps a file reference to a path.
func fileRef(ref string) (string, error) {
	path := ref
	if m := schemeRE.FindStringSubmatch(ref); m != nil {
		if m[1] != "file" {
			return "", fmt.Errorf("%w: unsupported key reference scheme %q", ErrInvalidRef, m[1])
		}
		path = ref[len("file:"):]
	}
	if rest, ok := strings.CutPrefix(path, "//"); ok {
		// RFC 8089: file:///abs/path, with an empty (local) authority only.
		if !strings.HasPrefix(rest, "/") {
			return "", fmt.Errorf("%w: file uri %q names a host", ErrInvalidRef, ref)
		}
		path = rest
	}
	if path == "" || strings.IndexByte(path, 0) >= 0 {
		return "", fmt.Errorf("%w: empty or malformed key path %q", ErrInvalidRef, ref)
	}
	return path, nil
}

func openFileRef(path string, pass PassphraseFunc) (crypto.Signer, error) {
	// Parse before prompting: a missing or broken file should not cost the
	// operator a passphrase entry, and the prompt can show the key ID.
	kf, err := OpenKeyFile(path)
	if err != nil {
		return nil, err
	}
	if pass == nil {
		return nil, fmt.Errorf("open key %s: %w", path, ErrNoPassphrase)
	}
	secret, err := pass(fmt.Sprintf("Passphrase for key %s (%s): ", path, shortID(kf.KeyID())))
	if err != nil {
		return nil, fmt.Errorf("open key %s: %w", path, err)
	}
	defer clear(secret)
	s, err := kf.Decrypt(secret)
	if err != nil {
		return nil, fmt.Errorf("open key %s: %w", path, err)
	}
	return s, nil
}

func openPKCS11Ref(cfg PKCS11Config, pass PassphraseFunc) (crypto.Signer, error) {
	if !cfg.hasPIN() && pass != nil {
		pin, err := pass(fmt.Sprintf("PIN for PKCS#11 token %q: ", cfg.TokenLabel))
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", cfg, err)
		}
		cfg.PIN = string(pin)
		clear(pin)
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
	}
	return OpenPKCS11(cfg)
}

func publicPKCS11(cfg PKCS11Config) (crypto.PublicKey, error) {
	s, err := OpenPKCS11(cfg)
	if err != nil {
		return nil, err
	}
	defer CloseSigner(s)
	return s.Public(), nil
}

func shortID(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}
