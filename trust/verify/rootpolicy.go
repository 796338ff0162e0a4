package verify

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"

	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// rootPolicy is what a koshin device requires of every root it trusts, on
// top of TUF's signature checks: the signed channel label of the device
// (CCDS UPC04, HLC01: a release device never trusts a dev root, also not
// through a rotation) and, for every role the device verifies, a threshold
// that distinct keys can actually meet. The second check rejects a
// misconfigured or malicious root when it is offered, instead of bricking
// the device at its next refresh.
type rootPolicy struct {
	channel trust.Channel
	roles   []string
}

var (
	imageRoles    = []string{metadata.ROOT, metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS}
	directorRoles = []string{metadata.ROOT, metadata.TARGETS}
)

func (p *rootPolicy) check(root *metadata.Metadata[metadata.RootType]) error {
	if p == nil {
		return nil // generic TUF repository: go-tuf's checks only
	}
	c, err := trust.RootChannel(&root.Signed)
	if err != nil {
		return err
	}
	if c != p.channel {
		return fmt.Errorf("%w: root v%d is for channel %q, device is %q", trust.ErrWrongChannel, root.Signed.Version, c, p.channel)
	}
	for _, name := range p.roles {
		if err := checkRole(&root.Signed, name); err != nil {
			return fmt.Errorf("root v%d: %w", root.Signed.Version, err)
		}
	}
	return nil
}

// checkRole requires threshold ≥ 1 and at least threshold distinct public
// keys. Keys are told apart by their public-key bytes, not by key ID: one
// key listed under two IDs (say as "ecdsa" and "ecdsa-sha2-nistp256") is
// one key.
func checkRole(root *metadata.RootType, name string) error {
	role := root.Roles[name]
	if role == nil {
		return fmt.Errorf("%w: no %s role", trust.ErrThreshold, name)
	}
	if role.Threshold < 1 {
		return fmt.Errorf("%w: %s threshold %d", trust.ErrThreshold, name, role.Threshold)
	}
	distinct := map[[32]byte]bool{}
	for _, id := range role.KeyIDs {
		fp, err := keyFingerprint(root.Keys[id])
		if err != nil {
			return fmt.Errorf("%w: %s key %.16s: %v", trust.ErrInvalid, name, id, err)
		}
		distinct[fp] = true
	}
	if len(distinct) < role.Threshold {
		return fmt.Errorf("%w: %s threshold %d but only %d distinct keys", trust.ErrThreshold, name, role.Threshold, len(distinct))
	}
	return nil
}

func keyFingerprint(k *metadata.Key) ([32]byte, error) {
	if k == nil {
		return [32]byte{}, fmt.Errorf("not in root keys")
	}
	pub, err := k.ToPublicKey()
	if err != nil {
		return [32]byte{}, err
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(der), nil
}
