package repo

import (
	"crypto"
	"fmt"
	"maps"
	"slices"

	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// KeyInfo describes a key authorised for a role.
type KeyInfo struct {
	Role  string
	KeyID string
	// Algorithm is the TUF signature scheme: "ed25519" or
	// "ecdsa-sha2-nistp256".
	Algorithm string
	// Ref is where the private key lives on this machine (key-file path or
	// pkcs11: URI); empty for keys held elsewhere, e.g. offline.
	Ref string
}

// AddKey authorises pub for role in the staged root (staging root N+1 if
// none is staged) and remembers ref, which may be empty for keys held
// elsewhere. The new key takes effect when that root is committed.
func (r *Repo) AddKey(role string, pub crypto.PublicKey, ref string) error {
	if err := validateRole(role); err != nil {
		return err
	}
	if err := validateKeyRef(ref); err != nil {
		return err
	}
	var id string
	err := r.editRoot(func(root *metadata.RootType) error {
		var err error
		if id, err = addRootKey(root, role, pub); err != nil {
			return err
		}
		return checkSeparation(root, imageRoles)
	})
	if err != nil {
		return err
	}
	return r.rememberRefs(map[string]string{id: ref})
}

// rememberRefs records where private keys live; empty refs are skipped.
func (r *Repo) rememberRefs(refs map[string]string) error {
	cfg := *r.cfg
	cfg.KeyRefs = maps.Clone(r.cfg.KeyRefs)
	changed := false
	for id, ref := range refs {
		if ref != "" && cfg.KeyRefs[id] != ref {
			cfg.KeyRefs[id] = ref
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	return r.saveConfig(&cfg)
}

// RemoveKey withdraws keyID from role in the staged root. Committing that
// root revokes the key: metadata it signs no longer counts for the role
// (CCDS UPC05/UPC06).
func (r *Repo) RemoveKey(role, keyID string) error {
	if err := validateRole(role); err != nil {
		return err
	}
	return r.editRoot(func(root *metadata.RootType) error {
		if !slices.Contains(root.Roles[role].KeyIDs, keyID) {
			return fmt.Errorf("%w: key %s is not authorised for %s", ErrUnknown, shortID(keyID), role)
		}
		if err := root.RevokeKey(keyID, role); err != nil {
			return fmt.Errorf("%w: %v", trust.ErrInvalid, err)
		}
		return nil
	})
}

// SetThreshold sets how many distinct keys must sign role, in the staged
// root. It may exceed the current key count while keys are being added;
// signing the root refuses a threshold the keys cannot meet.
func (r *Repo) SetThreshold(role string, n int) error {
	if err := validateRole(role); err != nil {
		return err
	}
	return r.editRoot(func(root *metadata.RootType) error {
		return setThreshold(root, role, n, imageRoles)
	})
}

// Keys lists the keys of every role as the staged root (or, if none, the
// signed root) authorises them.
func (r *Repo) Keys() []KeyInfo {
	root := &r.currentRoot().Signed
	var out []KeyInfo
	for _, role := range topLevelRoles {
		for _, id := range root.Roles[role].KeyIDs {
			out = append(out, KeyInfo{Role: role, KeyID: id, Algorithm: root.Keys[id].Scheme, Ref: r.cfg.KeyRefs[id]})
		}
	}
	return out
}

// Threshold returns role's threshold in the staged (else signed) root.
func (r *Repo) Threshold(role string) int {
	if rl := r.currentRoot().Signed.Roles[role]; rl != nil {
		return rl.Threshold
	}
	return 0
}
