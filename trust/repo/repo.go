package repo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Repo is an image repository workspace opened for reading and editing. It
// holds the workspace's lock until Close. Methods are not safe for
// concurrent use.
type Repo struct {
	// Now supplies the time from which staged versions get their expiry.
	// Init and Open set it to time.Now; tests replace it.
	Now func() time.Time

	dir     string
	cfg     *config
	signed  *signedState // nil until the first commit
	sRoot   *rootMeta    // staged root, nil if none
	sTarget *targetsMeta // staged targets, nil if none
	lock    *os.File
}

// InitOptions configures a new repository.
type InitOptions struct {
	// Channel is signed into every root (CCDS UPC03/UPC04); required.
	Channel trust.Channel
	// Thresholds per role; roles left out get 1. Root and targets may be
	// raised (e.g. root 3 of 5); snapshot and timestamp are online and stay 1.
	Thresholds map[string]int
	// Expiry policy; zero fields take DefaultExpiry.
	Expiry Expiry
	// Now defaults to time.Now.
	Now func() time.Time
}

// Init creates a repository in dir (created if missing) with root version 1
// and an empty targets version 1 staged, waiting for keys and signatures.
func Init(dir string, opts InitOptions) (*Repo, error) {
	if _, err := os.Stat(filepath.Join(dir, configFile)); err == nil {
		return nil, fmt.Errorf("%w: %s already holds a repository", ErrDuplicate, dir)
	}
	cfg := &config{Format: configFormat, Channel: opts.Channel, Expiry: opts.Expiry.withDefaults(), KeyRefs: map[string]string{}}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Repo{Now: opts.Now, dir: dir, cfg: cfg}
	if r.Now == nil {
		r.Now = time.Now
	}
	root, err := r.firstRoot(opts.Thresholds)
	if err != nil {
		return nil, err
	}
	if err := r.create(); err != nil {
		return nil, err
	}
	if err := r.initFiles(root); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Repo) firstRoot(thresholds map[string]int) (*rootMeta, error) {
	root := metadata.Root(r.expires(roleRoot))
	trust.SetRootChannel(&root.Signed, r.cfg.Channel)
	for role, n := range thresholds {
		if err := validateRole(role); err != nil {
			return nil, err
		}
		if err := setThreshold(&root.Signed, role, n, imageRoles); err != nil {
			return nil, err
		}
	}
	return root, nil
}

func (r *Repo) create() error {
	for _, d := range []string{r.dir, r.path(stagedDir), r.path(signedDir), r.path(payloadsDir)} {
		if err := os.MkdirAll(d, dirMode); err != nil {
			return fmt.Errorf("init: %w", err)
		}
	}
	l, err := lock(r.path(lockFile))
	if err != nil {
		return err
	}
	r.lock = l
	return nil
}

// initFiles writes repo.json last: its presence is what makes dir a
// repository, so a crash earlier leaves a directory Init can start over in.
func (r *Repo) initFiles(root *rootMeta) error {
	if err := r.saveStaged(roleRoot, root); err != nil {
		return err
	}
	r.sRoot = root
	targets := metadata.Targets(r.expires(roleTargets))
	if err := r.saveStaged(roleTargets, targets); err != nil {
		return err
	}
	r.sTarget = targets
	return r.saveConfig(r.cfg)
}

// Open opens the repository in dir, verifying its signed state.
func Open(dir string) (*Repo, error) {
	r := &Repo{Now: time.Now, dir: dir}
	b, err := readLimited(r.path(configFile), maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("open repository: %w", err)
	}
	if r.cfg, err = parseConfig(b); err != nil {
		return nil, err
	}
	if r.lock, err = lock(r.path(lockFile)); err != nil {
		return nil, err
	}
	if err := r.load(); err != nil {
		r.Close()
		return nil, fmt.Errorf("open repository %s: %w", dir, err)
	}
	return r, nil
}

func (r *Repo) load() error {
	var err error
	if r.signed, err = loadSigned(r.path(signedDir), r.cfg.Channel); err != nil {
		return err
	}
	if r.sRoot, err = r.loadStagedRoot(); err != nil {
		return err
	}
	if r.sTarget, err = r.loadStagedTargets(); err != nil {
		return err
	}
	r.removeIncoming()
	if r.signed == nil && (r.sRoot == nil || r.sTarget == nil) {
		return fmt.Errorf("%w: neither a signed state nor the initial staged root and targets", ErrCorrupt)
	}
	return nil
}

// Close releases the workspace lock.
func (r *Repo) Close() error {
	if r.lock == nil {
		return nil
	}
	err := r.lock.Close()
	r.lock = nil
	return err
}

// Dir returns the workspace directory.
func (r *Repo) Dir() string { return r.dir }

// Channel returns the channel the repository serves.
func (r *Repo) Channel() trust.Channel { return r.cfg.Channel }

// ExpiryPolicy returns the repository's expiry policy.
func (r *Repo) ExpiryPolicy() Expiry { return r.cfg.Expiry }

func (r *Repo) expires(role string) time.Time {
	return expiry(r.Now(), r.cfg.Expiry.For(role))
}

func (r *Repo) saveConfig(c *config) error {
	if err := writeFile(r.path(configFile), c.encode()); err != nil {
		return err
	}
	r.cfg = c
	return nil
}

// currentRoot is the root that authorises signatures now: the staged root
// if a new one is being prepared (its keys will govern what is committed
// with or after it), else the latest signed root.
func (r *Repo) currentRoot() *rootMeta {
	if r.sRoot != nil {
		return r.sRoot
	}
	return r.signed.root()
}

func (r *Repo) signedRoot() *rootMeta {
	if r.signed == nil {
		return nil
	}
	return r.signed.root()
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
