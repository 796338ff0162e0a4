package repo

import (
	"crypto"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Root logic shared by the image repository and the director: shape checks,
// the N → N+1 verification rule of TUF 5.3.4, and building a new version
// from a RoleSpec.

type rootMeta = metadata.Metadata[metadata.RootType]

// RoleSpec changes one role in a new root version.
type RoleSpec struct {
	// Keys replaces the role's keys; nil keeps the current ones.
	Keys []KeySpec
	// Threshold replaces the role's threshold; 0 keeps the current one.
	Threshold int
}

// KeySpec is a public key to authorise and, optionally, where its private
// half can be found on this machine (a key-file path or pkcs11: URI).
type KeySpec struct {
	Public crypto.PublicKey
	Ref    string
}

// roleSet names the roles a kind of root carries and which of them are
// online (their keys sit on a server).
type roleSet struct {
	all    []string
	online []string
}

var (
	imageRoles    = roleSet{all: topLevelRoles, online: []string{roleSnapshot, roleTimestamp}}
	directorRoles = roleSet{all: []string{roleRoot, roleTargets}, online: []string{roleTargets}}
)

// checkRootShape refuses roots that would make later code dereference nil or
// misread the channel: it runs on every root read from disk or accepted for
// signing.
func checkRootShape(root *metadata.RootType, rs roleSet, channel trust.Channel) error {
	if err := checkRootStructure(root, rs); err != nil {
		return err
	}
	c, err := trust.RootChannel(root)
	if err != nil {
		return err
	}
	if c != channel {
		return fmt.Errorf("%w: root is for channel %q, repository for %q", trust.ErrWrongChannel, c, channel)
	}
	return nil
}

// checkRootStructure is checkRootShape without the channel, for roots whose
// channel is not known in advance (offline signing).
func checkRootStructure(root *metadata.RootType, rs roleSet) error {
	if root.Type != roleRoot || root.Version < 1 || root.Version > maxRootVersion || !root.ConsistentSnapshot {
		return fmt.Errorf("%w: root must have _type root, version 1..%d and consistent_snapshot", trust.ErrInvalid, maxRootVersion)
	}
	for id, k := range root.Keys {
		if k == nil {
			return fmt.Errorf("%w: root key %s is null", trust.ErrInvalid, shortID(id))
		}
		if got, err := k.ID(); err != nil || got != id {
			return fmt.Errorf("%w: root key listed as %s has a different key ID", trust.ErrInvalid, shortID(id))
		}
	}
	if len(root.Roles) != len(rs.all) {
		return fmt.Errorf("%w: root must have exactly the roles %v", trust.ErrInvalid, rs.all)
	}
	for _, name := range rs.all {
		if err := checkRoleShape(root, name); err != nil {
			return err
		}
	}
	return nil
}

func checkRoleShape(root *metadata.RootType, name string) error {
	role := root.Roles[name]
	if role == nil {
		return fmt.Errorf("%w: root has no %s role", trust.ErrInvalid, name)
	}
	if role.Threshold < 1 || role.Threshold > maxThreshold || len(role.KeyIDs) > maxRoleKeys {
		return fmt.Errorf("%w: %s threshold %d or key count %d out of range", trust.ErrInvalid, name, role.Threshold, len(role.KeyIDs))
	}
	for i, id := range role.KeyIDs {
		if root.Keys[id] == nil {
			return fmt.Errorf("%w: %s lists key %s that root does not hold", trust.ErrInvalid, name, shortID(id))
		}
		if slices.Contains(role.KeyIDs[:i], id) {
			return fmt.Errorf("%w: %s lists key %s twice", trust.ErrInvalid, name, shortID(id))
		}
	}
	return nil
}

// checkRootUsable refuses a root that could never be satisfied (a threshold
// above the number of keys) or that mixes online and offline duties: a key
// that signs snapshot or timestamp lives on a server, and must not also be
// able to sign root or targets, or a server compromise would be total.
func checkRootUsable(root *metadata.RootType, rs roleSet) error {
	for _, name := range rs.all {
		role := root.Roles[name]
		if role.Threshold > len(role.KeyIDs) {
			return fmt.Errorf("%w: %s needs %d signatures but has only %d keys", trust.ErrThreshold, name, role.Threshold, len(role.KeyIDs))
		}
	}
	return checkSeparation(root, rs)
}

func checkSeparation(root *metadata.RootType, rs roleSet) error {
	for _, on := range rs.online {
		for _, off := range rs.all {
			if slices.Contains(rs.online, off) || root.Roles[on] == nil || root.Roles[off] == nil {
				continue
			}
			for _, id := range root.Roles[on].KeyIDs {
				if slices.Contains(root.Roles[off].KeyIDs, id) {
					return fmt.Errorf("%w: key %s is authorised for online role %s and offline role %s; use separate keys", trust.ErrInvalid, shortID(id), on, off)
				}
			}
		}
	}
	return nil
}

// verifyRootStep checks that next is trusted given prev (nil when next is
// the first root): TUF 5.3.4 requires a threshold of the previous root's
// root keys and a threshold of the new root's own root keys.
func verifyRootStep(prev, next *rootMeta) error {
	if prev != nil {
		if next.Signed.Version != prev.Signed.Version+1 {
			return fmt.Errorf("%w: root version %d does not follow %d", trust.ErrRollback, next.Signed.Version, prev.Signed.Version)
		}
		if err := prev.VerifyDelegate(roleRoot, next); err != nil {
			return fmt.Errorf("%w: root %d by root %d's keys: %v", trust.ErrThreshold, next.Signed.Version, prev.Signed.Version, err)
		}
	} else if next.Signed.Version != 1 {
		return fmt.Errorf("%w: first root has version %d", trust.ErrInvalid, next.Signed.Version)
	}
	if err := next.VerifyDelegate(roleRoot, next); err != nil {
		return fmt.Errorf("%w: root %d by its own keys: %v", trust.ErrThreshold, next.Signed.Version, err)
	}
	return nil
}

// rootKey returns the key record of keyID if a signature by it counts
// towards root next: it is a root key of next or of prev.
func rootKey(prev, next *rootMeta, keyID string) *metadata.Key {
	for _, m := range []*rootMeta{next, prev} {
		if m != nil && slices.Contains(m.Signed.Roles[roleRoot].KeyIDs, keyID) {
			return m.Signed.Keys[keyID]
		}
	}
	return nil
}

// nextRoot copies prev as version+1 with a new expiry and no signatures.
func nextRoot(prev *rootMeta, expires time.Time) (*rootMeta, error) {
	next, err := cloneMeta(prev)
	if err != nil {
		return nil, err
	}
	next.Signed.Version++
	next.Signed.Expires = expires
	next.Signatures = []metadata.Signature{}
	return next, nil
}

// applySpec replaces keys and thresholds of the roles named in spec and
// returns the refs of the keys it added (key ID → ref, refs may be empty).
func applySpec(root *metadata.RootType, spec map[string]RoleSpec, rs roleSet) (map[string]string, error) {
	refs := map[string]string{}
	for name, rspec := range spec {
		if !slices.Contains(rs.all, name) {
			return nil, fmt.Errorf("%w: no role %q in this root", trust.ErrInvalid, name)
		}
		if rspec.Keys != nil {
			if err := replaceKeys(root, name, rspec.Keys, refs); err != nil {
				return nil, err
			}
		}
		if rspec.Threshold != 0 {
			if err := setThreshold(root, name, rspec.Threshold, rs); err != nil {
				return nil, err
			}
		}
	}
	return refs, nil
}

func replaceKeys(root *metadata.RootType, role string, specs []KeySpec, refs map[string]string) error {
	if len(specs) > maxRoleKeys {
		return fmt.Errorf("%w: more than %d keys for %s", trust.ErrInvalid, maxRoleKeys, role)
	}
	for _, id := range slices.Clone(root.Roles[role].KeyIDs) {
		if err := root.RevokeKey(id, role); err != nil {
			return fmt.Errorf("%w: %v", trust.ErrInvalid, err)
		}
	}
	for _, ks := range specs {
		id, err := addRootKey(root, role, ks.Public)
		if err != nil {
			return err
		}
		if ks.Ref != "" {
			if err := validateKeyRef(ks.Ref); err != nil {
				return err
			}
			refs[id] = ks.Ref
		}
	}
	return nil
}

// addRootKey authorises pub for role and returns its key ID.
func addRootKey(root *metadata.RootType, role string, pub crypto.PublicKey) (string, error) {
	k, err := tufKey(pub)
	if err != nil {
		return "", err
	}
	id, err := k.ID()
	if err != nil {
		return "", fmt.Errorf("%w: %v", trust.ErrInvalid, err)
	}
	if slices.Contains(root.Roles[role].KeyIDs, id) {
		return "", fmt.Errorf("%w: key %s is already authorised for %s", ErrDuplicate, shortID(id), role)
	}
	if len(root.Roles[role].KeyIDs) >= maxRoleKeys {
		return "", fmt.Errorf("%w: %s already has %d keys", trust.ErrInvalid, role, maxRoleKeys)
	}
	if err := root.AddKey(k, role); err != nil {
		return "", fmt.Errorf("%w: %v", trust.ErrInvalid, err)
	}
	return id, nil
}

// tufKey converts a public key, accepting only what koshin signs with:
// Ed25519 and ECDSA P-256 (keys.TUFSigner's rule).
func tufKey(pub crypto.PublicKey) (*metadata.Key, error) {
	k, err := keys.TUFKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", trust.ErrInvalid, err)
	}
	if k.Type == metadata.KeyTypeRSASSA_PSS_SHA256 {
		return nil, fmt.Errorf("%w: RSA keys are not supported; use Ed25519 or ECDSA P-256", trust.ErrInvalid)
	}
	if _, err := keys.TUFSigner(pubOnly{pub}); err != nil {
		return nil, fmt.Errorf("%w: %v", trust.ErrInvalid, err)
	}
	return k, nil
}

// pubOnly lets tufKey reuse keys.TUFSigner's algorithm check on a bare
// public key; it is never asked to sign.
type pubOnly struct{ pub crypto.PublicKey }

func (p pubOnly) Public() crypto.PublicKey { return p.pub }
func (p pubOnly) Sign(_ io.Reader, _ []byte, _ crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("public key only")
}

// setThreshold checks 1 <= n <= 32; online roles are signed by the one key
// their server holds, so a higher threshold would add no protection and
// only break automated signing.
func setThreshold(root *metadata.RootType, role string, n int, rs roleSet) error {
	if n < 1 || n > maxThreshold {
		return fmt.Errorf("%w: threshold %d for %s must be 1..%d", trust.ErrInvalid, n, role, maxThreshold)
	}
	if slices.Contains(rs.online, role) && n != 1 {
		return fmt.Errorf("%w: %s is signed by one online key; its threshold must be 1", trust.ErrInvalid, role)
	}
	root.Roles[role].Threshold = n
	return nil
}
