package verify

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// ImageConfig configures an ImageClient.
type ImageConfig struct {
	// Dir holds the trusted metadata as root.json, timestamp.json,
	// snapshot.json, targets.json and <role>.json for delegated roles.
	Dir string
	// MetadataURL and TargetsURL are the repository's base URLs.
	MetadataURL, TargetsURL string
	Fetcher                 Fetcher
	// Now is the verification clock. Required.
	Now    func() time.Time
	Limits Limits
	// Channel, when set, applies koshin's root policy: every trusted root
	// must carry this signed channel label and thresholds distinct keys can
	// meet. Leave it empty for generic TUF repositories (other vendors'
	// repositories, the TUF conformance suite): their roots carry no koshin
	// fields, and only the TUF specification's checks then apply.
	Channel trust.Channel
	Logger  *slog.Logger
}

// ImageClient is a TUF client for one repository, without a director: the
// image-repository half of the Verifier, with delegated targets roles. A
// koshin device never installs through it alone (no director agreement);
// it serves conformance testing and tools that mirror or inspect a
// repository.
type ImageClient struct {
	repo       imageRepo
	targetsURL string

	mu sync.Mutex
	tm *trustedmetadata.TrustedMetadata // set by Refresh
}

// InitImageClient stores root as the trusted root in dir, replacing any
// trusted metadata already there. As in the conformance contract, the root
// is not checked here; Refresh verifies it before trusting anything.
func InitImageClient(dir string, root []byte) error {
	if len(root) > DefaultMaxRootSize {
		return fmt.Errorf("%w: root is %d bytes, limit %d", trust.ErrTooLong, len(root), DefaultMaxRootSize)
	}
	s := store{dir: dir}
	if err := s.mkdir(); err != nil {
		return err
	}
	for _, role := range []string{metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS} {
		if err := os.Remove(s.path(role)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return s.write(metadata.ROOT, root)
}

// NewImageClient opens a client on a directory initialised with
// InitImageClient.
func NewImageClient(cfg ImageConfig) (*ImageClient, error) {
	if cfg.Dir == "" || cfg.MetadataURL == "" || cfg.Fetcher == nil || cfg.Now == nil {
		return nil, fmt.Errorf("%w: image client needs Dir, MetadataURL, Fetcher and Now", trust.ErrInvalid)
	}
	var policy *rootPolicy
	if cfg.Channel != "" {
		if err := cfg.Channel.Validate(); err != nil {
			return nil, err
		}
		policy = &rootPolicy{channel: cfg.Channel, roles: imageRoles}
	}
	c := &ImageClient{targetsURL: cfg.TargetsURL, repo: imageRepo{log: cfg.Logger, rootChain: rootChain{
		store: store{dir: cfg.Dir}, url: cfg.MetadataURL, fetch: cfg.Fetcher,
		limits: cfg.Limits.withDefaults(), policy: policy, now: cfg.Now}}}
	return c, nil
}

// Refresh runs the TUF client workflow for the top-level roles.
func (c *ImageClient) Refresh(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tm = nil
	tm, err := c.repo.refresh(ctx)
	if err != nil {
		return err
	}
	c.tm = tm
	return nil
}

// Target finds a target by name, walking delegated roles in pre-order as
// TUF 5.6.7 specifies, and describes it for download. It requires a
// successful Refresh; a missing target wraps trust.ErrNotFound.
func (c *ImageClient) Target(ctx context.Context, name string) (Install, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tm == nil {
		return Install{}, fmt.Errorf("%w: no current metadata; Refresh first", trust.ErrExpired)
	}
	t, err := c.find(ctx, name)
	if err != nil {
		return Install{}, err
	}
	return newInstall(name, t, c.targetsURL, c.tm.Root.Signed.ConsistentSnapshot)
}

type roleVisit struct{ role, parent string }

// find is the delegation walk: depth-first, children in listed order, a
// terminating delegation ends backtracking, each role visited once and at
// most MaxDelegations roles in all.
func (c *ImageClient) find(ctx context.Context, name string) (*metadata.TargetFiles, error) {
	stack := []roleVisit{{metadata.TARGETS, metadata.ROOT}}
	visited := map[string]bool{}
	for len(stack) > 0 && len(visited) <= c.repo.limits.MaxDelegations {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[v.role] {
			continue
		}
		t, err := c.repo.loadTargets(ctx, c.tm, v.role, v.parent)
		if err != nil {
			return nil, fmt.Errorf("role %q: %w", v.role, err)
		}
		if tf := t.Signed.Targets[name]; tf != nil {
			return tf, nil
		}
		visited[v.role] = true
		children, terminate, err := childRoles(t, name, v.role)
		if err != nil {
			return nil, err
		}
		if terminate {
			stack = stack[:0]
		}
		slices.Reverse(children)
		stack = append(stack, children...)
	}
	return nil, fmt.Errorf("%w: %q", trust.ErrNotFound, name)
}

// childRoles lists the roles delegated the target path, up to and including
// the first terminating one.
func childRoles(t *targetsMeta, name, parent string) ([]roleVisit, bool, error) {
	if t.Signed.Delegations == nil {
		return nil, false, nil
	}
	var roles []metadata.RoleResult
	err := guard(func() error {
		roles = t.Signed.Delegations.GetRolesForTarget(name)
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	var out []roleVisit
	for _, r := range roles {
		out = append(out, roleVisit{r.Name, parent})
		if r.Terminating {
			return out, true, nil
		}
	}
	return out, false, nil
}
