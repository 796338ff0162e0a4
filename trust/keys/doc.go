// Package keys holds the signing keys of koshin's repositories behind
// crypto.Signer: passphrase-encrypted key files (Ed25519 or ECDSA P-256) by
// default and PKCS#11 tokens (ECDSA P-256) when built with the pkcs11 tag.
// TUFSigner adapts any of them to go-tuf's metadata signing.
package keys
