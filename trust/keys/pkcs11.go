//go:build pkcs11

package keys

import (
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// hsmSigner is a key pair on a PKCS#11 token. The private key never leaves
// the token (CCDS UPC11, UPE12); the crypto11 context, and with it the
// logged-in session, lives until Close.
type hsmSigner struct {
	ctx  *crypto11.Context
	key  crypto11.Signer
	once sync.Once
	err  error
}

// OpenPKCS11 logs in to the token and finds the ECDSA P-256 key pair
// labelled cfg.ObjectLabel (and with CKA_ID cfg.ObjectID, if set). Exactly
// one pair must match. The returned signer implements io.Closer.
//
// PKCS#11 keeps login state per process and token: while a signer of the
// same token is open, another open succeeds without the token checking
// its PIN again. A wrong PIN otherwise fails with ErrBadPassphrase.
func OpenPKCS11(cfg PKCS11Config) (crypto.Signer, error) {
	ctx, err := configurePKCS11(cfg)
	if err != nil {
		return nil, err
	}
	key, err := findKeyPair(ctx, cfg)
	if err != nil {
		ctx.Close()
		return nil, fmt.Errorf("open %s: %w", cfg, err)
	}
	return &hsmSigner{ctx: ctx, key: key}, nil
}

// GeneratePKCS11 creates an ECDSA P-256 key pair on the token, labelled
// cfg.ObjectLabel, sensitive and not extractable. It refuses a label that
// is already in use, so a reference keeps naming one key. Without
// cfg.ObjectID the pair gets a random 16-byte CKA_ID.
func GeneratePKCS11(cfg PKCS11Config) (crypto.Signer, error) {
	ctx, err := configurePKCS11(cfg)
	if err != nil {
		return nil, err
	}
	key, err := generateKeyPair(ctx, cfg)
	if err != nil {
		ctx.Close()
		return nil, fmt.Errorf("generate on %s: %w", cfg, err)
	}
	return &hsmSigner{ctx: ctx, key: key}, nil
}

func configurePKCS11(cfg PKCS11Config) (*crypto11.Context, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pin, err := cfg.pin()
	if err != nil {
		return nil, err
	}
	ctx, err := crypto11.Configure(&crypto11.Config{
		Path:       cfg.ModulePath,
		TokenLabel: cfg.TokenLabel,
		Pin:        pin,
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", cfg, classifyLogin(err))
	}
	return ctx, nil
}

// classifyLogin lets callers re-prompt after a wrong PIN as they do after
// a wrong passphrase.
func classifyLogin(err error) error {
	var p11 pkcs11.Error
	if errors.As(err, &p11) && (p11 == pkcs11.CKR_PIN_INCORRECT || p11 == pkcs11.CKR_PIN_LEN_RANGE) {
		return fmt.Errorf("%w: %v", ErrBadPassphrase, err)
	}
	return err
}

func findKeyPair(ctx *crypto11.Context, cfg PKCS11Config) (crypto11.Signer, error) {
	pairs, err := ctx.FindKeyPairs(cfg.ObjectID, []byte(cfg.ObjectLabel))
	if err != nil {
		return nil, fmt.Errorf("find key pair: %w", err)
	}
	switch len(pairs) {
	case 0:
		return nil, fmt.Errorf("no key pair labelled %q", cfg.ObjectLabel)
	case 1:
	default:
		return nil, fmt.Errorf("%d key pairs labelled %q: add id= to the uri", len(pairs), cfg.ObjectLabel)
	}
	if alg, err := AlgorithmOf(pairs[0].Public()); err != nil || alg != ECDSAP256 {
		return nil, fmt.Errorf("key pair %q is not ECDSA P-256", cfg.ObjectLabel)
	}
	return pairs[0], nil
}

func generateKeyPair(ctx *crypto11.Context, cfg PKCS11Config) (crypto11.Signer, error) {
	existing, err := ctx.FindKeyPairs(nil, []byte(cfg.ObjectLabel))
	if err != nil {
		return nil, fmt.Errorf("find key pair: %w", err)
	}
	if len(existing) > 0 {
		return nil, fmt.Errorf("key pair labelled %q: %w", cfg.ObjectLabel, fs.ErrExist)
	}
	id := cfg.ObjectID
	if len(id) == 0 {
		id = make([]byte, 16)
		rand.Read(id)
	}
	key, err := ctx.GenerateECDSAKeyPairWithLabel(id, []byte(cfg.ObjectLabel), elliptic.P256())
	if err != nil {
		return nil, fmt.Errorf("generate ecdsa p-256: %w", err)
	}
	return key, nil
}

func (h *hsmSigner) Public() crypto.PublicKey { return h.key.Public() }

// Sign signs a digest on the token. It insists on a hashed digest of the
// right length: the token would sign anything, and an unhashed message
// passed here by mistake must fail rather than yield a useless signature.
func (h *hsmSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil || opts.HashFunc() == 0 || len(digest) != opts.HashFunc().Size() {
		return nil, fmt.Errorf("pkcs11 sign: want a hashed digest")
	}
	return h.key.Sign(r, digest, opts)
}

// Close logs out and releases the token; later Sign calls fail.
func (h *hsmSigner) Close() error {
	h.once.Do(func() { h.err = h.ctx.Close() })
	return h.err
}
