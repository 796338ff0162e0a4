//go:build !pkcs11

package keys

import "crypto"

// OpenPKCS11 needs the pkcs11 build tag (and cgo); this build returns
// ErrNoPKCS11.
func OpenPKCS11(cfg PKCS11Config) (crypto.Signer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return nil, ErrNoPKCS11
}

// GeneratePKCS11 needs the pkcs11 build tag (and cgo); this build returns
// ErrNoPKCS11.
func GeneratePKCS11(cfg PKCS11Config) (crypto.Signer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return nil, ErrNoPKCS11
}
