package repo

import (
	"bytes"
	"crypto"
	"fmt"
	"slices"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Sign adds s's signature to the staged role (root or targets). It refuses
// a key the role does not authorise (ErrNotAuthorised), a second signature
// by the same key (ErrDuplicate), a role whose threshold its keys cannot
// meet, and targets whose channel is not the repository's. The role is
// complete once a threshold of distinct authorised keys has signed; a new
// root needs a threshold of the previous root's root keys as well as of its
// own (TUF 5.3.4).
func (r *Repo) Sign(role string, s crypto.Signer) error {
	msg, err := r.signable(role)
	if err != nil {
		return err
	}
	id, err := keys.KeyID(s.Public())
	if err != nil {
		return fmt.Errorf("%w: %v", trust.ErrInvalid, err)
	}
	if _, err := r.signingKey(role, id); err != nil {
		return err
	}
	ts, err := keys.TUFSigner(s)
	if err != nil {
		return fmt.Errorf("%w: %v", trust.ErrInvalid, err)
	}
	sig, err := ts.SignMessage(bytes.NewReader(msg))
	if err != nil {
		return fmt.Errorf("sign %s: %w", role, err)
	}
	return r.addSignature(role, metadata.Signature{KeyID: id, Signature: sig})
}

// signable runs the checks that must pass before anyone signs a staged role
// and returns the bytes a signature covers.
func (r *Repo) signable(role string) ([]byte, error) {
	if err := validateOfflineRole(role); err != nil {
		return nil, err
	}
	if !r.staged(role) {
		return nil, fmt.Errorf("%w: for %s", ErrNothingStaged, role)
	}
	if role == roleRoot {
		if err := checkRootShape(&r.sRoot.Signed, imageRoles, r.cfg.Channel); err != nil {
			return nil, err
		}
		if err := checkRootUsable(&r.sRoot.Signed, imageRoles); err != nil {
			return nil, err
		}
		return canonical(r.sRoot.Signed)
	}
	if err := checkTargetsContent(&r.sTarget.Signed, r.cfg.Channel); err != nil {
		return nil, err
	}
	tr := r.currentRoot().Signed.Roles[roleTargets]
	if tr.Threshold > len(tr.KeyIDs) {
		return nil, fmt.Errorf("%w: targets needs %d signatures but has only %d keys", trust.ErrThreshold, tr.Threshold, len(tr.KeyIDs))
	}
	return canonical(r.sTarget.Signed)
}

// signingKey returns the key record of keyID if its signature counts for
// the staged role: for root, a root key of the staged or the previous root;
// for targets, a targets key of the root that governs the staged targets.
func (r *Repo) signingKey(role, keyID string) (*metadata.Key, error) {
	var k *metadata.Key
	if role == roleRoot {
		k = rootKey(r.signedRoot(), r.sRoot, keyID)
	} else if root := &r.currentRoot().Signed; slices.Contains(root.Roles[roleTargets].KeyIDs, keyID) {
		k = root.Keys[keyID]
	}
	if k == nil {
		return nil, fmt.Errorf("%w: key %s may not sign %s", ErrNotAuthorised, shortID(keyID), role)
	}
	return k, nil
}

// addSignature verifies sig against the staged role and stores it.
func (r *Repo) addSignature(role string, sig metadata.Signature) error {
	msg, err := r.signable(role)
	if err != nil {
		return err
	}
	key, err := r.signingKey(role, sig.KeyID)
	if err != nil {
		return err
	}
	if err := verifySig(key, msg, sig.Signature); err != nil {
		return err
	}
	if role == roleRoot {
		return addSig(r, role, r.sRoot, sig, func(m *rootMeta) { r.sRoot = m })
	}
	return addSig(r, role, r.sTarget, sig, func(m *targetsMeta) { r.sTarget = m })
}

func addSig[T metadata.Roles](r *Repo, role string, m *metadata.Metadata[T], sig metadata.Signature, set func(*metadata.Metadata[T])) error {
	if hasSignature(m.Signatures, sig.KeyID) {
		return fmt.Errorf("%w: key %s has already signed %s", ErrDuplicate, shortID(sig.KeyID), role)
	}
	c, err := cloneMeta(m)
	if err != nil {
		return err
	}
	c.Signatures = append(c.Signatures, sig)
	sortSignatures(c.Signatures)
	if err := saveMeta(r.stagedPath(role), c); err != nil {
		return err
	}
	set(c)
	return nil
}

// Signatures reports how far a staged role is from its threshold.
type Signatures struct {
	Role    string
	Version int64
	// Have valid signatures by Need distinct keys of the role.
	Have, Need int
	// For a root after the first: valid signatures by the previous root's
	// root keys, and its threshold.
	PrevHave, PrevNeed int
	Signers            []string // key IDs that signed validly
}

// Complete reports whether the threshold(s) are met.
func (s Signatures) Complete() bool {
	return s.Have >= s.Need && s.PrevHave >= s.PrevNeed
}

// SignatureStatus counts the valid signatures on the staged role.
func (r *Repo) SignatureStatus(role string) (Signatures, error) {
	if err := validateOfflineRole(role); err != nil {
		return Signatures{}, err
	}
	if !r.staged(role) {
		return Signatures{}, fmt.Errorf("%w: for %s", ErrNothingStaged, role)
	}
	if role == roleRoot {
		return rootSignatures(r.signedRoot(), r.sRoot)
	}
	return roleSignatures(r.currentRoot(), roleTargets, r.sTarget.Signed, r.sTarget.Signatures, r.sTarget.Signed.Version)
}

func roleSignatures(by *rootMeta, role string, signed any, sigs []metadata.Signature, version int64) (Signatures, error) {
	msg, err := canonical(signed)
	if err != nil {
		return Signatures{}, err
	}
	rl := by.Signed.Roles[role]
	ok := validSigners(by.Signed.Keys, rl.KeyIDs, msg, sigs)
	return Signatures{Role: role, Version: version, Have: len(ok), Need: rl.Threshold, Signers: ok}, nil
}

func rootSignatures(prev, next *rootMeta) (Signatures, error) {
	s, err := roleSignatures(next, roleRoot, next.Signed, next.Signatures, next.Signed.Version)
	if err != nil || prev == nil {
		return s, err
	}
	p, err := roleSignatures(prev, roleRoot, next.Signed, next.Signatures, next.Signed.Version)
	if err != nil {
		return s, err
	}
	s.PrevHave, s.PrevNeed = p.Have, p.Need
	for _, id := range p.Signers {
		if !slices.Contains(s.Signers, id) {
			s.Signers = append(s.Signers, id)
		}
	}
	return s, nil
}
