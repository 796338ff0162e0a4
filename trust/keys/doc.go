// Package keys holds the signing keys of koshin's repositories behind
// crypto.Signer: passphrase-encrypted key files (Ed25519 or ECDSA P-256) by
// default and PKCS#11 tokens (ECDSA P-256) when built with the pkcs11 tag.
// TUFSigner adapts any of them to go-tuf's metadata signing.
//
// Keys are named by references (Open, Public): a key file path, file:PATH,
// or an RFC 7512 pkcs11: URI (PKCS11Config). Code that signs takes a
// reference and a PassphraseFunc and never learns where the key lives.
//
// Key files (WriteKeyFile, ReadKeyFile) are never plaintext on disk: the
// PKCS#8 private key is sealed with AES-256-GCM under a key derived from the
// passphrase with Argon2id, and the readable header (algorithm, public key,
// TUF key ID, KDF parameters) is bound to the ciphertext as additional data,
// so any change to it fails decryption (EN 303 645 5.4-1). Files are created
// 0600, atomically, and never over an existing file. Reading bounds the file
// size and the Argon2id costs so a hostile file cannot exhaust memory.
//
// Token keys never leave the token: they are generated on it, sensitive and
// non-extractable, and sign there (CCDS UPC11, UPE12). The default build
// is cgo-free and its PKCS#11 functions return ErrNoPKCS11.
//
// Public keys travel between key holders as PKIX PEM files
// (WritePublicKeyPEM, ReadPublicKeyPEM): in a key ceremony each holder
// exports the public half, and the administrator lists the keys and their
// thresholds in root (CCDS UPC07; EN 303 645 5.5-8). Secrets come from an
// environment variable or a no-echo terminal prompt, never from a default
// (PassphraseFromEnvOrTerminal).
package keys
