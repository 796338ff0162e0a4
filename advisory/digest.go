package advisory

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
)

// Digest is the hex SHA-256 of a document: the value signed into a
// release's advisory_sha256 or sbom_sha256.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// VerifyDigest checks that b is the document whose hex SHA-256 was
// signed. An empty signed digest means the release carries no such
// document, and nothing matches it.
func VerifyDigest(b []byte, signedSHA256 string) error {
	want, err := hex.DecodeString(signedSHA256)
	if err != nil || len(want) != sha256.Size {
		return fmt.Errorf("%w: the release signs no digest for this document", ErrDigest)
	}
	got := sha256.Sum256(b)
	if subtle.ConstantTimeCompare(got[:], want) != 1 {
		return ErrDigest
	}
	return nil
}

// VerifyCSAF checks an advisory a device fetched against the digest signed
// into its release, then parses it: the order matters, so that unsigned
// bytes never reach the parser.
func VerifyCSAF(b []byte, signedSHA256 string) (*CSAF, error) {
	if err := VerifyDigest(b, signedSHA256); err != nil {
		return nil, err
	}
	return ParseCSAF(b)
}
