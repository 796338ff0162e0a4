package repo

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"

	"github.com/koshin-ota/koshin/trust"
	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// canonical returns the bytes TUF signatures cover: the canonical JSON of a
// role's "signed" object, exactly as go-tuf computes it when verifying.
func canonical(signed any) ([]byte, error) {
	b, err := cjson.EncodeCanonical(signed)
	if err != nil {
		return nil, fmt.Errorf("%w: canonical json: %v", trust.ErrInvalid, err)
	}
	return b, nil
}

// verifySig checks one signature by one key over msg. It is the check used
// before a signature is accepted into staged metadata, so that a bad
// signature (wrong document, broken token) is refused at once rather than
// discovered at commit.
func verifySig(key *metadata.Key, msg, sig []byte) error {
	pub, err := key.ToPublicKey()
	if err != nil {
		return fmt.Errorf("%w: key: %v", trust.ErrInvalid, err)
	}
	ok := false
	switch pub := pub.(type) {
	case ed25519.PublicKey:
		ok = key.Scheme == metadata.KeySchemeEd25519 && ed25519.Verify(pub, msg, sig)
	case *ecdsa.PublicKey:
		digest := sha256.Sum256(msg)
		ok = key.Scheme == metadata.KeySchemeECDSA_SHA2_P256 && ecdsa.VerifyASN1(pub, digest[:], sig)
	default:
		return fmt.Errorf("%w: unsupported key type %s", trust.ErrInvalid, key.Type)
	}
	if !ok {
		return fmt.Errorf("%w: signature by key %s does not verify", trust.ErrThreshold, short(key))
	}
	return nil
}

// validSigners returns the IDs of the keys in keyIDs that made a valid
// signature over msg.
func validSigners(keys map[string]*metadata.Key, keyIDs []string, msg []byte, sigs []metadata.Signature) []string {
	var ok []string
	for _, s := range sigs {
		k := keys[s.KeyID]
		if k == nil || !slices.Contains(keyIDs, s.KeyID) || slices.Contains(ok, s.KeyID) {
			continue
		}
		if verifySig(k, msg, s.Signature) == nil {
			ok = append(ok, s.KeyID)
		}
	}
	return ok
}

// sortSignatures keeps signature order independent of signing order, so the
// same set of signatures always produces the same file.
func sortSignatures(sigs []metadata.Signature) {
	slices.SortFunc(sigs, func(a, b metadata.Signature) int { return strings.Compare(a.KeyID, b.KeyID) })
}

func hasSignature(sigs []metadata.Signature, keyID string) bool {
	return slices.ContainsFunc(sigs, func(s metadata.Signature) bool { return s.KeyID == keyID })
}

// short abbreviates a key ID for messages; full IDs are in `repo key list`.
func short(key *metadata.Key) string {
	id, err := key.ID()
	if err != nil {
		return "?"
	}
	return shortID(id)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
