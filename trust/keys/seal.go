package keys

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
)

// Passphrase length limits. The minimum applies when sealing; the maximum
// bounds the input from an environment variable or a pasted terminal line.
const (
	MinPassphraseLen = 12
	maxPassphraseLen = 4096
)

func checkPassphrase(passphrase []byte) error {
	if len(passphrase) < MinPassphraseLen {
		return fmt.Errorf("%w: %d bytes, need at least %d", ErrPassphraseTooShort, len(passphrase), MinPassphraseLen)
	}
	if len(passphrase) > maxPassphraseLen {
		return fmt.Errorf("passphrase longer than %d bytes", maxPassphraseLen)
	}
	return nil
}

// sealKeyFile encrypts a software key into a new KeyFile with a fresh salt
// and nonce.
func sealKeyFile(s crypto.Signer, passphrase []byte, p KDFParams) (*KeyFile, error) {
	if err := checkPassphrase(passphrase); err != nil {
		return nil, err
	}
	p = p.orDefault()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	der, alg, err := privateDER(s)
	if err != nil {
		return nil, err
	}
	defer clear(der)
	f, err := newHeader(s.Public(), alg, p)
	if err != nil {
		return nil, err
	}
	if err := f.seal(passphrase, der); err != nil {
		return nil, err
	}
	return &KeyFile{f: *f, pub: s.Public()}, nil
}

func newHeader(pub crypto.PublicKey, alg Algorithm, p KDFParams) (*fileJSON, error) {
	pubDER, err := marshalPKIX(pub)
	if err != nil {
		return nil, err
	}
	id, err := KeyID(pub)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 32)
	rand.Read(salt) // never fails (crypto/rand since Go 1.24)
	return &fileJSON{fileHeader: fileHeader{
		Format:    keyFileFormat,
		Algorithm: alg,
		KeyID:     id,
		Public:    pubDER,
		KDF:       kdfJSON{Name: kdfName, Time: p.Time, MemoryKiB: p.MemoryKiB, Threads: p.Threads, Salt: salt},
		Cipher:    cipherName,
	}}, nil
}

func (f *fileJSON) seal(passphrase, plaintext []byte) error {
	aead, aad, err := f.aead(passphrase)
	if err != nil {
		return err
	}
	f.Nonce = make([]byte, nonceLen)
	rand.Read(f.Nonce)
	f.Ciphertext = aead.Seal(nil, f.Nonce, plaintext, aad)
	return nil
}

// aead derives the file's sealing key and returns the cipher with the
// header's additional data.
func (f *fileJSON) aead(passphrase []byte) (cipher.AEAD, []byte, error) {
	aad, err := f.fileHeader.aad()
	if err != nil {
		return nil, nil, err
	}
	p := KDFParams{Time: f.KDF.Time, MemoryKiB: f.KDF.MemoryKiB, Threads: f.KDF.Threads}
	key := deriveKey(passphrase, f.KDF.Salt, p)
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, fmt.Errorf("gcm: %w", err)
	}
	return aead, aad, nil
}

// Decrypt unseals the private key. A wrong passphrase and any change to the
// header, nonce or ciphertext both yield ErrBadPassphrase.
func (k *KeyFile) Decrypt(passphrase []byte) (crypto.Signer, error) {
	if len(passphrase) == 0 || len(passphrase) > maxPassphraseLen {
		return nil, ErrBadPassphrase
	}
	aead, aad, err := k.f.aead(passphrase)
	if err != nil {
		return nil, err
	}
	der, err := aead.Open(nil, k.f.Nonce, k.f.Ciphertext, aad)
	if err != nil {
		return nil, ErrBadPassphrase
	}
	defer clear(der)
	return signerFromDER(der, k.f.Algorithm, k.pub)
}
