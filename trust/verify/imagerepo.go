package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"

	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

type targetsMeta = metadata.Metadata[metadata.TargetsType]

// imageRepo runs the TUF client workflow against one repository: root
// chain, then timestamp, snapshot and targets, each verified by go-tuf's
// TrustedMetadata and persisted as soon as it is accepted.
type imageRepo struct {
	rootChain
	log *slog.Logger
}

// refresh returns a trusted set whose top-level metadata is current and
// unexpired at the reference time.
func (r *imageRepo) refresh(ctx context.Context) (*trustedmetadata.TrustedMetadata, error) {
	tm, err := r.open()
	if err != nil {
		return nil, err
	}
	if err := r.update(ctx, tm); err != nil {
		return nil, err
	}
	if err := r.loadTimestamp(ctx, tm); err != nil {
		return nil, fmt.Errorf("timestamp: %w", err)
	}
	if err := r.loadSnapshot(ctx, tm); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if _, err := r.loadTargets(ctx, tm, metadata.TARGETS, metadata.ROOT); err != nil {
		return nil, fmt.Errorf("targets: %w", err)
	}
	return tm, nil
}

// loadTimestamp first loads the persisted timestamp, ignoring any error:
// if it verifies it becomes the rollback reference (even when expired); if
// it no longer verifies because the root rotated the timestamp key, the
// device starts afresh from the new key (fast-forward recovery, TUF 5.3.11).
func (r *imageRepo) loadTimestamp(ctx context.Context, tm *trustedmetadata.TrustedMetadata) error {
	if local, err := r.store.read(metadata.TIMESTAMP, r.limits.MaxTimestampSize); err == nil {
		r.ignore(metadata.TIMESTAMP, guard(func() error {
			_, err := tm.UpdateTimestamp(local)
			return err
		}))
	}
	data, err := r.fetch.Fetch(ctx, metaURL(r.url, "timestamp.json"), r.limits.MaxTimestampSize)
	if err != nil {
		return err
	}
	err = guard(func() error {
		_, err := tm.UpdateTimestamp(data)
		return err
	})
	if errors.Is(err, &metadata.ErrEqualVersionNumber{}) {
		return nil // nothing new; the persisted timestamp stays
	}
	if err != nil {
		return err
	}
	return r.store.write(metadata.TIMESTAMP, data)
}

// loadSnapshot keeps the persisted snapshot if it is still the one the
// timestamp names, else fetches N.snapshot.json.
func (r *imageRepo) loadSnapshot(ctx context.Context, tm *trustedmetadata.TrustedMetadata) error {
	if local, err := r.store.read(metadata.SNAPSHOT, r.limits.MaxSnapshotSize); err == nil {
		err := guard(func() error {
			_, err := tm.UpdateSnapshot(local, true)
			return err
		})
		if err == nil {
			return nil
		}
		r.ignore(metadata.SNAPSHOT, err)
	}
	meta := tm.Timestamp.Signed.Meta["snapshot.json"]
	if meta == nil {
		return fmt.Errorf("%w: timestamp names no snapshot", trust.ErrInvalid)
	}
	name := r.versioned(tm, metadata.SNAPSHOT, meta.Version)
	data, err := r.fetch.Fetch(ctx, metaURL(r.url, name), capLen(meta.Length, r.limits.MaxSnapshotSize))
	if err != nil {
		return err
	}
	err = guard(func() error {
		_, err := tm.UpdateSnapshot(data, false)
		return err
	})
	if err != nil {
		return err
	}
	return r.store.write(metadata.SNAPSHOT, data)
}

// loadTargets loads a targets role (top-level or delegated by parent),
// preferring the persisted copy when it still matches the snapshot.
func (r *imageRepo) loadTargets(ctx context.Context, tm *trustedmetadata.TrustedMetadata, role, parent string) (*targetsMeta, error) {
	if t := tm.Targets[role]; t != nil {
		return t, nil
	}
	if role != metadata.TARGETS && slices.Contains(imageRoles, role) {
		// Its file would overwrite a top-level role's trusted copy.
		return nil, fmt.Errorf("%w: delegated role named %q", trust.ErrInvalid, role)
	}
	if local, err := r.store.read(role, r.limits.MaxTargetsSize); err == nil {
		t, err := updateTargets(tm, local, role, parent)
		if err == nil {
			return t, nil
		}
		r.ignore(role, err)
	}
	meta := tm.Snapshot.Signed.Meta[role+".json"]
	if meta == nil {
		return nil, fmt.Errorf("%w: snapshot does not list %q", trust.ErrNotFound, role)
	}
	name := r.versioned(tm, url.PathEscape(role), meta.Version)
	data, err := r.fetch.Fetch(ctx, metaURL(r.url, name), capLen(meta.Length, r.limits.MaxTargetsSize))
	if err != nil {
		return nil, err
	}
	t, err := updateTargets(tm, data, role, parent)
	if err != nil {
		return nil, err
	}
	return t, r.store.write(role, data)
}

func updateTargets(tm *trustedmetadata.TrustedMetadata, data []byte, role, parent string) (t *targetsMeta, err error) {
	err = guard(func() (err error) {
		t, err = tm.UpdateDelegatedTargets(data, role, parent)
		return err
	})
	return t, err
}

// versioned names a file under consistent snapshots (N.name.json) or not.
func (r *imageRepo) versioned(tm *trustedmetadata.TrustedMetadata, escapedRole string, version int64) string {
	if tm.Root.Signed.ConsistentSnapshot {
		return strconv.FormatInt(version, 10) + "." + escapedRole + ".json"
	}
	return escapedRole + ".json"
}

func (r *imageRepo) ignore(role string, err error) {
	if err != nil && r.log != nil {
		r.log.Debug("persisted metadata not used", "role", role, "err", err)
	}
}
