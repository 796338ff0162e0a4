package repo

import (
	"fmt"
	"os"

	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Staged roles: root and targets are prepared in DIR/staged/ as the next
// version of their signed counterpart, collect signatures there, and are
// promoted by Commit. Any edit drops the signatures collected so far (they
// covered the old content) and renews the expiry from Now.

func (r *Repo) stagedPath(role string) string { return r.path(stagedDir, role+".json") }

func saveMeta[T metadata.Roles](name string, m *metadata.Metadata[T]) error {
	b, err := encodeMeta(m)
	if err != nil {
		return err
	}
	return writeFile(name, b)
}

func (r *Repo) saveStaged(role string, m any) error {
	switch m := m.(type) {
	case *rootMeta:
		return saveMeta(r.stagedPath(role), m)
	case *targetsMeta:
		return saveMeta(r.stagedPath(role), m)
	}
	panic("saveStaged: unexpected metadata type")
}

// loadStaged reads a staged file; a version at or below the signed one is a
// leftover of a commit interrupted after its commit point and is removed.
func loadStaged[T metadata.Roles](r *Repo, role string, signedVersion int64) (*metadata.Metadata[T], error) {
	raw, err := readLimited(r.stagedPath(role), maxMetaSize)
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m, err := parseMeta[T](raw)
	if err != nil {
		return nil, fmt.Errorf("staged %s: %w", role, err)
	}
	v := metaVersion(m)
	if v <= signedVersion {
		return nil, removeFile(r.stagedPath(role))
	}
	if v != signedVersion+1 {
		return nil, fmt.Errorf("%w: staged %s has version %d, signed has %d", ErrCorrupt, role, v, signedVersion)
	}
	return m, nil
}

func metaVersion(m any) int64 {
	switch m := m.(type) {
	case *rootMeta:
		return m.Signed.Version
	case *targetsMeta:
		return m.Signed.Version
	}
	panic("metaVersion: unexpected metadata type")
}

func (r *Repo) loadStagedRoot() (*rootMeta, error) {
	var sv int64
	if r.signed != nil {
		sv = r.signed.root().Signed.Version
	}
	m, err := loadStaged[metadata.RootType](r, roleRoot, sv)
	if err != nil || m == nil {
		return nil, err
	}
	if err := checkRootShape(&m.Signed, imageRoles, r.cfg.Channel); err != nil {
		return nil, fmt.Errorf("staged root: %w", err)
	}
	return m, nil
}

func (r *Repo) loadStagedTargets() (*targetsMeta, error) {
	var sv int64
	if r.signed != nil {
		sv = r.signed.targets.Signed.Version
	}
	m, err := loadStaged[metadata.TargetsType](r, roleTargets, sv)
	if err != nil || m == nil {
		return nil, err
	}
	if err := checkTargetsContent(&m.Signed, r.cfg.Channel); err != nil {
		return nil, fmt.Errorf("staged targets: %w", err)
	}
	return m, nil
}

func removeFile(name string) error {
	if err := os.Remove(name); err != nil && !isNotExist(err) {
		return err
	}
	return nil
}

// editRoot applies fn to a copy of the staged root (staging version N+1
// first if needed) and saves it; on error nothing changes.
func (r *Repo) editRoot(fn func(*metadata.RootType) error) error {
	root, err := r.rootToEdit()
	if err != nil {
		return err
	}
	if err := fn(&root.Signed); err != nil {
		return err
	}
	root.Signatures = []metadata.Signature{}
	root.Signed.Expires = r.expires(roleRoot)
	if err := r.saveStaged(roleRoot, root); err != nil {
		return err
	}
	r.sRoot = root
	return nil
}

func (r *Repo) rootToEdit() (*rootMeta, error) {
	if r.sRoot != nil {
		return cloneMeta(r.sRoot)
	}
	return nextRoot(r.signed.root(), r.expires(roleRoot))
}

// editTargets is editRoot for targets.
func (r *Repo) editTargets(fn func(*metadata.TargetsType) error) error {
	t, err := r.targetsToEdit()
	if err != nil {
		return err
	}
	if err := fn(&t.Signed); err != nil {
		return err
	}
	t.Signatures = []metadata.Signature{}
	t.Signed.Expires = r.expires(roleTargets)
	if err := r.saveStaged(roleTargets, t); err != nil {
		return err
	}
	r.sTarget = t
	return nil
}

func (r *Repo) targetsToEdit() (*targetsMeta, error) {
	if r.sTarget != nil {
		return cloneMeta(r.sTarget)
	}
	t, err := cloneMeta(r.signed.targets)
	if err != nil {
		return nil, err
	}
	t.Signed.Version++
	return t, nil
}

// Stage starts a new version of root or targets without other changes, to
// renew its expiry before it lapses (root yearly, targets quarterly with the
// default policy) or to re-sign it with new keys.
func (r *Repo) Stage(role string) error {
	if err := validateOfflineRole(role); err != nil {
		return err
	}
	if r.signed == nil {
		return ErrNotCommitted
	}
	if r.staged(role) {
		return fmt.Errorf("%w: %s version %d is already staged", ErrDuplicate, role, r.stagedVersion(role))
	}
	if role == roleRoot {
		return r.editRoot(func(*metadata.RootType) error { return nil })
	}
	return r.editTargets(func(*metadata.TargetsType) error { return nil })
}

// Discard drops the staged version of root or targets and its signatures.
// The first versions of a new repository cannot be discarded.
func (r *Repo) Discard(role string) error {
	if err := validateOfflineRole(role); err != nil {
		return err
	}
	if !r.staged(role) {
		return fmt.Errorf("%w: for %s", ErrNothingStaged, role)
	}
	if r.signed == nil {
		return fmt.Errorf("%w: the first %s of a new repository cannot be discarded", trust.ErrInvalid, role)
	}
	if err := removeFile(r.stagedPath(role)); err != nil {
		return err
	}
	if role == roleRoot {
		r.sRoot = nil
	} else {
		r.sTarget = nil
	}
	return nil
}

func (r *Repo) staged(role string) bool {
	if role == roleRoot {
		return r.sRoot != nil
	}
	return r.sTarget != nil
}

func (r *Repo) stagedVersion(role string) int64 {
	if role == roleRoot {
		return r.sRoot.Signed.Version
	}
	return r.sTarget.Signed.Version
}
