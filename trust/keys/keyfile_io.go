package keys

import (
	"crypto"
	"fmt"
)

// WriteKeyFile seals a software key (from Generate) under passphrase and
// writes it to path with mode 0600. It never replaces an existing file, so
// a mistyped path cannot destroy a signing key: the error then matches
// fs.ErrExist. The zero KDFParams means DefaultKDF; explicit parameters are
// held to the same floor (EN 303 645 5.4-1, 5.5-8).
func WriteKeyFile(path string, s crypto.Signer, passphrase []byte, p KDFParams) error {
	kf, err := sealKeyFile(s, passphrase, p)
	if err != nil {
		return fmt.Errorf("write key %s: %w", path, err)
	}
	data, err := kf.MarshalJSON()
	if err != nil {
		return fmt.Errorf("write key %s: %w", path, err)
	}
	return writeNewFile(path, append(data, '\n'), 0o600)
}

// ReadKeyFile reads and decrypts a key file. A wrong passphrase or a
// tampered file returns an error matching ErrBadPassphrase.
func ReadKeyFile(path string, passphrase []byte) (crypto.Signer, error) {
	kf, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	s, err := kf.Decrypt(passphrase)
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	return s, nil
}

// ReadPublicKey returns the public key of a key file without the
// passphrase, after checking that the recorded key ID is that key's. Until
// the file is decrypted the key is only as trustworthy as the file's
// storage; the decrypting read authenticates it.
func ReadPublicKey(path string) (crypto.PublicKey, error) {
	kf, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	return kf.Public(), nil
}

// OpenKeyFile reads and parses a key file without decrypting it, for
// callers that show the key ID before asking for the passphrase.
func OpenKeyFile(path string) (*KeyFile, error) { return readKeyFile(path) }

func readKeyFile(path string) (*KeyFile, error) {
	data, err := readLimited(path, MaxKeyFileSize)
	if err != nil {
		return nil, err
	}
	kf, err := ParseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	return kf, nil
}
