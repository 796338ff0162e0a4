package verify

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// Config configures a Verifier.
type Config struct {
	// Device is the verifying device. Device.Installed is copied; update it
	// with SetInstalled after a commit.
	Device trust.Device
	// Dir holds the trusted metadata written by Provision.
	Dir string
	// ImageURL and DirectorURL are the metadata base URLs of the two
	// repositories; TargetsURL is the image repository's payload base URL.
	ImageURL, DirectorURL, TargetsURL string
	Fetcher                           Fetcher
	// Now is the verification clock (expiry checks). Required: verification
	// code never reads the system clock itself.
	Now    func() time.Time
	Limits Limits
	// Logger receives debug records (e.g. persisted metadata set aside
	// during fast-forward recovery); nil discards them.
	Logger *slog.Logger
	// WriteFile, if set, replaces atomicfile.WriteFile for every persisted
	// metadata file. It must be just as atomic and durable; it exists so
	// that power-cut tests can make each metadata write a cut point.
	WriteFile func(name string, data []byte, perm os.FileMode) error
}

func (c *Config) validate() error {
	d := c.Device
	if err := trust.ValidateID("device ID", d.ID); err != nil {
		return err
	}
	if err := trust.ValidateID("hardware ID", d.HardwareID); err != nil {
		return err
	}
	if err := d.Channel.Validate(); err != nil {
		return err
	}
	for name, u := range map[string]string{"image": c.ImageURL, "director": c.DirectorURL, "targets": c.TargetsURL} {
		if _, err := url.Parse(u); err != nil || u == "" {
			return fmt.Errorf("%w: %s URL %q", trust.ErrInvalid, name, u)
		}
	}
	if c.Dir == "" || c.Fetcher == nil || c.Now == nil {
		return fmt.Errorf("%w: verifier needs Dir, Fetcher and Now", trust.ErrInvalid)
	}
	return nil
}

// Verifier is one device's verifier. Its methods are safe for concurrent use
// but run one at a time: an update is one transaction (CCDS UPE10).
type Verifier struct {
	cfg      Config
	image    imageRepo
	director rootChain

	mu        sync.Mutex
	installed map[string]uint64
	img       *imageState // nil until RefreshImage succeeds
	plan      *Plan       // last accepted director instruction
}

// imageState is the outcome of the last successful image refresh.
type imageState struct {
	targets    *targetsMeta
	floors     map[string]uint64
	consistent bool
	expires    time.Time // earliest expiry of root, timestamp, snapshot, targets
}

// New opens a provisioned device's verifier. It checks that both trusted
// roots are present, verify, and match the device's channel.
func New(cfg Config) (*Verifier, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Limits = cfg.Limits.withDefaults()
	ch := cfg.Device.Channel
	v := &Verifier{cfg: cfg, installed: maps.Clone(cfg.Device.Installed)}
	v.image = imageRepo{log: cfg.Logger, rootChain: rootChain{
		store: store{filepath.Join(cfg.Dir, imageSubdir), cfg.WriteFile}, url: cfg.ImageURL, fetch: cfg.Fetcher,
		limits: cfg.Limits, policy: &rootPolicy{channel: ch, roles: imageRoles}, now: cfg.Now}}
	v.director = rootChain{
		store: store{filepath.Join(cfg.Dir, directorSubdir), cfg.WriteFile}, url: cfg.DirectorURL, fetch: cfg.Fetcher,
		limits: cfg.Limits, policy: &rootPolicy{channel: ch, roles: directorRoles}, now: cfg.Now}
	for _, c := range []*rootChain{&v.image.rootChain, &v.director} {
		if _, err := c.open(); err != nil {
			return nil, fmt.Errorf("open %s: %w", c.store.dir, err)
		}
	}
	return v, nil
}

// SetInstalled records the release counters now committed on the device
// (component → counter), the reference for anti-rollback (CCDS UPC02).
func (v *Verifier) SetInstalled(installed map[string]uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.installed = maps.Clone(installed)
}

// RefreshImage brings the image repository's metadata up to date with the
// TUF client workflow and persists every accepted file. On failure the
// device keeps no usable image state until a refresh succeeds, so
// CheckDirector cannot fall back on stale metadata (freeze attack).
func (v *Verifier) RefreshImage(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.img = nil
	tm, err := v.image.refresh(ctx)
	if err != nil {
		return fmt.Errorf("image repository: %w", err)
	}
	st, err := newImageState(tm)
	if err != nil {
		return fmt.Errorf("image repository: %w", err)
	}
	v.img = st
	return nil
}

func newImageState(tm *trustedmetadata.TrustedMetadata) (*imageState, error) {
	t := tm.Targets[metadata.TARGETS]
	floors, err := trust.Floors(&t.Signed)
	if err != nil {
		return nil, err
	}
	exp := tm.Root.Signed.Expires
	for _, e := range []time.Time{tm.Timestamp.Signed.Expires, tm.Snapshot.Signed.Expires, t.Signed.Expires} {
		if e.Before(exp) {
			exp = e
		}
	}
	return &imageState{targets: t, floors: floors, consistent: tm.Root.Signed.ConsistentSnapshot, expires: exp}, nil
}

// freshImage returns the image state if it is still unexpired now: a
// long-running agent must not act on metadata that expired since its last
// refresh.
func (v *Verifier) freshImage() (*imageState, error) {
	if v.img == nil {
		return nil, fmt.Errorf("%w: no current image metadata; RefreshImage first", trust.ErrExpired)
	}
	if now := v.cfg.Now(); now.After(v.img.expires) {
		return nil, fmt.Errorf("%w: image metadata expired at %s", trust.ErrExpired, v.img.expires.Format(time.RFC3339))
	}
	return v.img, nil
}

// Lookup returns the named target if, and only if, the last accepted
// director instruction names it. Anything that installs by name must go
// through Lookup: a target the image repository signed but the director did
// not assign to this device is never installable (image-only compromise,
// trust.ErrNoInstruction). The instruction is not persisted: after a
// restart the device checks in again for a fresh, nonce-bound one.
func (v *Verifier) Lookup(name string) (Install, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if in, ok := v.plan.Lookup(name); ok {
		return in, nil
	}
	return Install{}, fmt.Errorf("%w: %q", trust.ErrNoInstruction, name)
}
