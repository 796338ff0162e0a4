package repo

import (
	"crypto"
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// RotateRoot stages root N+1 with the keys and thresholds in spec (roles
// not named keep theirs) and signs it with each signer. A signer may hold
// a root key of root N or of root N+1; the new root is complete when both
// thresholds are met (TUF 5.3.4), so the old key holders approve handing
// over and the new ones prove they hold their keys. Commit it with keys of
// the new root's snapshot and timestamp roles; when the targets keys change,
// stage and sign targets with the new keys and commit them together. Every
// root version stays in the repository so devices can walk the chain
// (CCDS UPC06/UPC07). A root already staged must be committed or discarded
// first.
func (r *Repo) RotateRoot(spec map[string]RoleSpec, signers ...crypto.Signer) error {
	if r.signed == nil {
		return fmt.Errorf("%w: sign and commit root 1 first", ErrNotCommitted)
	}
	if r.sRoot != nil {
		return fmt.Errorf("%w: root %d is already staged; commit or discard it first", ErrDuplicate, r.sRoot.Signed.Version)
	}
	var refs map[string]string
	err := r.editRoot(func(root *metadata.RootType) error {
		var err error
		if refs, err = applySpec(root, spec, imageRoles); err != nil {
			return err
		}
		return checkRootUsable(root, imageRoles)
	})
	if err != nil {
		return err
	}
	if err := r.rememberRefs(refs); err != nil {
		return err
	}
	for _, s := range signers {
		if err := r.Sign(roleRoot, s); err != nil {
			return err
		}
	}
	return nil
}
