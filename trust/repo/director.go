package repo

import (
	"bytes"
	"crypto"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/koshin-ota/koshin/internal/atomicfile"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Director is the signing side of the Uptane director repository: it holds
// the director's root chain and its online targets key, and signs, per
// device and per check-in, a targets document naming what that device
// installs next (DESIGN §3/§4).
//
// The director root has only the root and targets roles. Snapshot and
// timestamp protect a client from being served an old or mixed set of
// files; a director document is a single file signed on request that echoes
// the nonce the device just sent, which gives freshness without them (and
// without a device clock). See docs/trust.md.
//
// Workspace: DIR/director.json (channel, root expiry) and DIR/N.root.json for
// every root version. A Director is safe for concurrent use; SignTargets
// does no I/O.
type Director struct {
	dir string
	cfg directorConfig

	rotate  sync.Mutex // serialises RotateRoot
	mu      sync.RWMutex
	roots   []*rootMeta
	rootRaw [][]byte
	signer  signature.Signer
	keyID   string
}

const (
	directorConfigFile = "director.json"
	// MaxDirectorTargets bounds one device's instruction.
	MaxDirectorTargets = 64
)

type directorConfig struct {
	Format     int           `json:"format"`
	Channel    trust.Channel `json:"channel"`
	RootExpiry Duration      `json:"root_expiry"`
}

func parseDirectorConfig(b []byte) (*directorConfig, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c directorConfig
	if len(b) > maxConfigSize {
		return nil, fmt.Errorf("%w: %s too large", trust.ErrInvalid, directorConfigFile)
	}
	if err := dec.Decode(&c); err != nil || dec.More() {
		return nil, fmt.Errorf("%w: %s is malformed", trust.ErrInvalid, directorConfigFile)
	}
	return &c, c.validate()
}

func (c *directorConfig) validate() error {
	if c.Format != configFormat {
		return fmt.Errorf("%w: %s format %d, this koshin reads %d", trust.ErrInvalid, directorConfigFile, c.Format, configFormat)
	}
	if d := time.Duration(c.RootExpiry); d < minExpiry || d > maxExpiry {
		return fmt.Errorf("%w: root expiry %s outside %s..%s", trust.ErrInvalid, c.RootExpiry, Duration(minExpiry), Duration(maxExpiry))
	}
	return c.Channel.Validate()
}

// DirectorOptions configures a new director.
type DirectorOptions struct {
	Channel trust.Channel
	// RootKeys sign director root 1 and are its root keys.
	RootKeys []crypto.Signer
	// RootThreshold defaults to 1.
	RootThreshold int
	// Targets is the online key that signs per-device targets.
	Targets crypto.Signer
	// RootExpiry defaults to DefaultExpiry.Root.
	RootExpiry time.Duration
}

// InitDirector creates a director in dir with root 1 signed by every root
// key, and returns it ready to sign.
func InitDirector(dir string, now time.Time, opts DirectorOptions) (*Director, error) {
	if _, err := os.Stat(filepath.Join(dir, directorConfigFile)); err == nil {
		return nil, fmt.Errorf("%w: %s already holds a director", ErrDuplicate, dir)
	}
	cfg := directorConfig{Format: configFormat, Channel: opts.Channel, RootExpiry: Duration(opts.RootExpiry)}
	if cfg.RootExpiry == 0 {
		cfg.RootExpiry = DefaultExpiry.Root
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	root, err := firstDirectorRoot(now, cfg, opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("init director: %w", err)
	}
	d := &Director{dir: dir, cfg: cfg}
	if err := d.addRoot(root); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, directorConfigFile), mustJSON(cfg)); err != nil {
		return nil, err
	}
	return d, d.setSigner(opts.Targets)
}

func firstDirectorRoot(now time.Time, cfg directorConfig, opts DirectorOptions) (*rootMeta, error) {
	root := metadata.Root(expiry(now, time.Duration(cfg.RootExpiry)))
	root.Signed.Roles = map[string]*metadata.Role{
		roleRoot:    {KeyIDs: []string{}, Threshold: 1},
		roleTargets: {KeyIDs: []string{}, Threshold: 1},
	}
	trust.SetRootChannel(&root.Signed, cfg.Channel)
	spec := map[string]RoleSpec{roleRoot: {Keys: []KeySpec{}}, roleTargets: {Keys: []KeySpec{}}}
	for _, s := range opts.RootKeys {
		spec[roleRoot] = RoleSpec{Keys: append(spec[roleRoot].Keys, KeySpec{Public: s.Public()})}
	}
	if opts.Targets == nil {
		return nil, fmt.Errorf("%w: a director needs an online targets key", trust.ErrInvalid)
	}
	spec[roleTargets] = RoleSpec{Keys: []KeySpec{{Public: opts.Targets.Public()}}}
	if opts.RootThreshold != 0 {
		spec[roleRoot] = RoleSpec{Keys: spec[roleRoot].Keys, Threshold: opts.RootThreshold}
	}
	if _, err := applySpec(&root.Signed, spec, directorRoles); err != nil {
		return nil, err
	}
	return signDirectorRoot(nil, root, opts.RootKeys)
}

// signDirectorRoot signs next with every signer and checks the result is a
// valid step from prev.
func signDirectorRoot(prev, next *rootMeta, signers []crypto.Signer) (*rootMeta, error) {
	if err := checkRootUsable(&next.Signed, directorRoles); err != nil {
		return nil, err
	}
	for _, s := range signers {
		id, err := keys.KeyID(s.Public())
		if err != nil {
			return nil, fmt.Errorf("%w: %v", trust.ErrInvalid, err)
		}
		if rootKey(prev, next, id) == nil {
			return nil, fmt.Errorf("%w: key %s may not sign director root %d", ErrNotAuthorised, shortID(id), next.Signed.Version)
		}
		if hasSignature(next.Signatures, id) {
			return nil, fmt.Errorf("%w: key %s given twice", ErrDuplicate, shortID(id))
		}
		ts, err := keys.TUFSigner(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", trust.ErrInvalid, err)
		}
		if _, err := next.Sign(ts); err != nil {
			return nil, fmt.Errorf("sign director root: %w", err)
		}
	}
	sortSignatures(next.Signatures)
	if err := verifyRootStep(prev, next); err != nil {
		return nil, err
	}
	return next, nil
}

// addRoot writes root as the next version file and appends it. One file
// per version, written atomically, so no separate commit point is needed.
func (d *Director) addRoot(root *rootMeta) error {
	raw, err := encodeMeta(root)
	if err != nil {
		return err
	}
	name := filepath.Join(d.dir, versionedName(root.Signed.Version, roleRoot))
	if err := atomicfile.WriteFile(name, raw, fileMode); err != nil {
		return err
	}
	d.roots = append(d.roots, root)
	d.rootRaw = append(d.rootRaw, raw)
	return nil
}

// OpenDirector loads and verifies the director's root chain and checks that
// targets is its authorised online key.
func OpenDirector(dir string, targets crypto.Signer) (*Director, error) {
	b, err := readLimited(filepath.Join(dir, directorConfigFile), maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("open director: %w", err)
	}
	cfg, err := parseDirectorConfig(b)
	if err != nil {
		return nil, err
	}
	d := &Director{dir: dir, cfg: *cfg}
	if err := d.Reload(); err != nil {
		return nil, err
	}
	return d, d.setSigner(targets)
}

// Reload re-reads the root chain from disk, picking up a rotation made by
// another process.
func (d *Director) Reload() error {
	roots, raws, err := readRootChain(d.dir, d.cfg.Channel)
	if err != nil {
		return fmt.Errorf("open director %s: %w", d.dir, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.roots, d.rootRaw = roots, raws
	return nil
}

func readRootChain(dir string, channel trust.Channel) ([]*rootMeta, [][]byte, error) {
	var roots []*rootMeta
	var raws [][]byte
	for v := int64(1); v <= maxRootVersion; v++ {
		m, raw, err := readVersioned[metadata.RootType](dir, v, roleRoot)
		if err != nil && len(roots) > 0 && isNotExist(err) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		if err := checkDirectorRoot(lastRoot(roots), m, channel); err != nil {
			return nil, nil, fmt.Errorf("%w: root %d: %v", ErrCorrupt, v, err)
		}
		roots, raws = append(roots, m), append(raws, raw)
	}
	return roots, raws, nil
}

func checkDirectorRoot(prev, next *rootMeta, channel trust.Channel) error {
	if err := checkRootShape(&next.Signed, directorRoles, channel); err != nil {
		return err
	}
	return verifyRootStep(prev, next)
}

func lastRoot(roots []*rootMeta) *rootMeta {
	if len(roots) == 0 {
		return nil
	}
	return roots[len(roots)-1]
}

// setSigner installs the online targets key after checking the latest root
// authorises it.
func (d *Director) setSigner(s crypto.Signer) error {
	if s == nil {
		return fmt.Errorf("%w: no director targets key", trust.ErrInvalid)
	}
	id, err := keys.KeyID(s.Public())
	if err != nil {
		return fmt.Errorf("%w: %v", trust.ErrInvalid, err)
	}
	ts, err := keys.TUFSigner(s)
	if err != nil {
		return fmt.Errorf("%w: %v", trust.ErrInvalid, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !slices.Contains(lastRoot(d.roots).Signed.Roles[roleTargets].KeyIDs, id) {
		return fmt.Errorf("%w: key %s is not the director's targets key", ErrNotAuthorised, shortID(id))
	}
	d.signer, d.keyID = ts, id
	return nil
}

// Channel returns the director's channel.
func (d *Director) Channel() trust.Channel { return d.cfg.Channel }

// Root returns the latest director root file, to provision devices with.
func (d *Director) Root() []byte {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return slices.Clone(d.rootRaw[len(d.rootRaw)-1])
}

// RootVersion returns director root file n, for devices walking the chain.
func (d *Director) RootVersion(n int64) ([]byte, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if n < 1 || n > int64(len(d.rootRaw)) {
		return nil, fmt.Errorf("%w: director root %d", trust.ErrNotFound, n)
	}
	return slices.Clone(d.rootRaw[n-1]), nil
}

// Version returns the latest director root version.
func (d *Director) Version() int64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return int64(len(d.roots))
}

// RotateRoot writes director root N+1 with the changes in spec, signed by
// signers (root keys of N and N+1; both thresholds must be met, as for the
// image repository). targets, if not nil, becomes the online key; it must
// be authorised by the new root, and must be given when spec replaces the
// targets keys.
func (d *Director) RotateRoot(now time.Time, spec map[string]RoleSpec, targets crypto.Signer, signers ...crypto.Signer) error {
	d.rotate.Lock()
	defer d.rotate.Unlock()
	d.mu.RLock()
	prev := lastRoot(d.roots)
	d.mu.RUnlock()
	next, err := nextRoot(prev, expiry(now, time.Duration(d.cfg.RootExpiry)))
	if err != nil {
		return err
	}
	if _, err := applySpec(&next.Signed, spec, directorRoles); err != nil {
		return err
	}
	if next, err = signDirectorRoot(prev, next, signers); err != nil {
		return err
	}
	if err := d.checkNewSigner(next, targets); err != nil {
		return err
	}
	d.mu.Lock()
	err = d.addRoot(next)
	d.mu.Unlock()
	if err != nil || targets == nil {
		return err
	}
	return d.setSigner(targets)
}

func (d *Director) checkNewSigner(next *rootMeta, targets crypto.Signer) error {
	d.mu.RLock()
	id := d.keyID
	d.mu.RUnlock()
	if targets != nil {
		var err error
		if id, err = keys.KeyID(targets.Public()); err != nil {
			return fmt.Errorf("%w: %v", trust.ErrInvalid, err)
		}
	}
	if !slices.Contains(next.Signed.Roles[roleTargets].KeyIDs, id) {
		return fmt.Errorf("%w: director root %d would not authorise the online targets key %s; pass the new key", ErrNotAuthorised, next.Signed.Version, shortID(id))
	}
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err) // plain structs only
	}
	return append(b, '\n')
}
