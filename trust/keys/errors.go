package keys

import "errors"

// Errors callers classify with errors.Is, for example to prompt again after a
// wrong passphrase or to point the operator at the right build.
var (
	// ErrBadPassphrase: the passphrase is wrong or the key file was altered.
	// The two cannot be told apart: AES-GCM authenticates the passphrase,
	// the sealed key and the header in one tag.
	ErrBadPassphrase = errors.New("wrong passphrase or tampered key file")
	// ErrPassphraseTooShort: a new key file needs at least MinPassphraseLen
	// bytes of passphrase.
	ErrPassphraseTooShort = errors.New("passphrase too short")
	// ErrNoPassphrase: neither the environment nor a terminal supplied one.
	ErrNoPassphrase = errors.New("no passphrase available")
	// ErrInvalidKeyFile: the key file is malformed, of an unknown format or
	// outside the accepted limits.
	ErrInvalidKeyFile = errors.New("invalid key file")
	// ErrInvalidRef: a key reference or PKCS#11 URI that cannot be used.
	ErrInvalidRef = errors.New("invalid key reference")
	// ErrNoPKCS11 is returned by the PKCS#11 functions of a build without
	// the pkcs11 tag (the default, cgo-free build).
	ErrNoPKCS11 = errors.New("koshin was built without PKCS#11 support; rebuild with -tags pkcs11")
)
