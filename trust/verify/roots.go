package verify

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// rootChain is one repository's root of trust: the last trusted root on
// disk and the N.root.json files under url through which it advances.
type rootChain struct {
	store  store
	url    string // metadata base URL
	fetch  Fetcher
	limits Limits
	policy *rootPolicy // nil for generic TUF repositories
	now    func() time.Time
}

// open loads the trusted root into a fresh trusted set whose reference time
// is now. The persisted root was verified when it was accepted; it is
// checked again because the file is the device's anchor for everything else.
func (c *rootChain) open() (*trustedmetadata.TrustedMetadata, error) {
	data, err := c.store.read(metadata.ROOT, c.limits.MaxRootSize)
	if err != nil {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	var tm *trustedmetadata.TrustedMetadata
	err = guard(func() (err error) {
		tm, err = trustedmetadata.New(data)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	if err := c.policy.check(tm.Root); err != nil {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	tm.RefTime = c.now().UTC()
	return tm, nil
}

// update walks N+1.root.json until the repository has no newer root,
// persisting every accepted root at once so that a device interrupted in a
// long walk resumes where it stopped. Each new root must be signed by a
// threshold of the previous root's keys and of its own, and carry exactly
// the next version (so N+2 cannot skip N+1's checks).
func (c *rootChain) update(ctx context.Context, tm *trustedmetadata.TrustedMetadata) error {
	for range c.limits.MaxRootRotations {
		next := tm.Root.Signed.Version + 1
		data, err := c.fetch.Fetch(ctx, metaURL(c.url, strconv.FormatInt(next, 10)+".root.json"), c.limits.MaxRootSize)
		if errors.Is(err, trust.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("root v%d: %w", next, err)
		}
		err = guard(func() error {
			_, err := tm.UpdateRoot(data)
			return err
		})
		if err != nil {
			return fmt.Errorf("root v%d: %w", next, err)
		}
		if err := c.policy.check(tm.Root); err != nil {
			return err
		}
		if err := c.store.write(metadata.ROOT, data); err != nil {
			return err
		}
	}
	return nil
}

// metaURL joins a base URL and a file name.
func metaURL(base, name string) string {
	return strings.TrimSuffix(base, "/") + "/" + name
}
