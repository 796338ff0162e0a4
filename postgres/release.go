package postgres

import (
	"context"
	"database/sql"
	"time"

	"github.com/koshin-ota/koshin"
)

const releaseColumns = `name, length, hashes, hardware_ids, component, release_counter, version, channel,
	security, advisories, support_end, sbom_sha256, encrypted, revoked, revoked_at, imported_at, advisory_sha256`

func scanRelease(s scanner) (*koshin.Release, error) {
	var r koshin.Release
	var hashes, hw, adv string
	var counter int64
	var revoked, imported sql.NullInt64
	if err := s.Scan(&r.Name, &r.Length, &hashes, &hw, &r.Component, &counter, &r.Version, &r.Channel,
		&r.Security, &adv, &r.SupportEnd, &r.SBOMSHA256, &r.Encrypted, &r.Revoked, &revoked, &imported, &r.AdvisorySHA256); err != nil {
		return nil, err
	}
	r.ReleaseCounter, r.RevokedAt, r.ImportedAt = uint64(counter), timeOf(revoked), timeOf(imported)
	if err := fromJSON(hashes, &r.Hashes); err != nil {
		return nil, err
	}
	if err := fromJSON(hw, &r.HardwareIDs); err != nil {
		return nil, err
	}
	return &r, fromJSON(adv, &r.Advisories)
}

// CreateRelease implements koshin.ReleaseStore.
func (db *DB) CreateRelease(ctx context.Context, r *koshin.Release) error {
	if err := r.Validate(); err != nil {
		return err
	}
	r.ImportedAt, r.Revoked, r.RevokedAt = db.now(), false, time.Time{}
	cols := make([]string, 3)
	for i, v := range []any{r.Hashes, r.HardwareIDs, r.Advisories} {
		s, err := jsonText(v)
		if err != nil {
			return err
		}
		cols[i] = s
	}
	return db.update(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM releases WHERE name = $1`, r.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return koshin.Errorf(koshin.ECONFLICT, "Release %s exists already.", r.Name)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO releases (`+releaseColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
			r.Name, r.Length, cols[0], cols[1], r.Component, int64(r.ReleaseCounter), r.Version, r.Channel,
			r.Security, cols[2], r.SupportEnd, r.SBOMSHA256, r.Encrypted, false, nil, r.ImportedAt.UnixMicro(), r.AdvisorySHA256); err != nil {
			return err
		}
		for _, hw := range r.HardwareIDs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO release_hardware (release_name, hardware_id) VALUES ($1, $2)`, r.Name, hw); err != nil {
				return err
			}
		}
		return nil
	})
}

// FindReleaseByName implements koshin.ReleaseStore.
func (db *DB) FindReleaseByName(ctx context.Context, name string) (*koshin.Release, error) {
	if err := koshin.ValidateReleaseName(name); err != nil {
		return nil, err
	}
	return findRelease(ctx, db.db, name)
}

func findRelease(ctx context.Context, q queryer, name string) (*koshin.Release, error) {
	return scanReleaseRow(q.QueryRowContext(ctx, `SELECT `+releaseColumns+` FROM releases WHERE name = $1`, name), name)
}

// Row lock strengths.
const (
	// forShare: the transaction relies on the release staying as read
	// (not revoked) until it commits; many may hold it at once.
	forShare = ` FOR SHARE`
	// forNoKeyUpdate: the transaction changes the row (not its key).
	forNoKeyUpdate = ` FOR NO KEY UPDATE`
	// forUpdate: also excludes FOR KEY SHARE holders (see lockDevice).
	forUpdate = ` FOR UPDATE`
)

// lockRelease reads a release and locks its row until the transaction
// ends. Rollout creation, start and resume take it FOR SHARE and
// revocation FOR NO KEY UPDATE, so no rollout can be created, started or
// resumed on a release that a concurrent transaction is revoking.
func lockRelease(ctx context.Context, tx *sql.Tx, name, strength string) (*koshin.Release, error) {
	return scanReleaseRow(tx.QueryRowContext(ctx, `SELECT `+releaseColumns+` FROM releases WHERE name = $1`+strength, name), name)
}

func scanReleaseRow(row *sql.Row, name string) (*koshin.Release, error) {
	r, err := scanRelease(row)
	if err != nil {
		return nil, notFound(err, "Release %s not found.", name)
	}
	return r, nil
}

// FindReleases implements koshin.ReleaseStore.
func (db *DB) FindReleases(ctx context.Context, f koshin.ReleaseFilter) ([]*koshin.Release, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	limit, _ := koshin.Limit(f.Limit)
	var q query
	if f.Component != "" {
		q.where("component = " + q.arg(f.Component))
	}
	if f.HardwareID != "" {
		q.where("EXISTS (SELECT 1 FROM release_hardware h WHERE h.release_name = releases.name AND h.hardware_id = " + q.arg(f.HardwareID) + ")")
	}
	if f.Channel != "" {
		q.where("channel = " + q.arg(f.Channel))
	}
	if !f.IncludeRevoked {
		q.where("revoked = " + q.arg(false))
	}
	if f.After != "" {
		q.where("name > " + q.arg(f.After))
	}
	rows, err := db.db.QueryContext(ctx, `SELECT `+releaseColumns+` FROM releases`+q.clause()+
		` ORDER BY name LIMIT `+q.arg(limit), q.args...)
	if err != nil {
		return nil, mapError(err)
	}
	return collect(rows, scanRelease)
}

// RevokeRelease implements koshin.ReleaseStore.
func (db *DB) RevokeRelease(ctx context.Context, name string, now time.Time) (*koshin.Release, error) {
	if err := koshin.ValidateReleaseName(name); err != nil {
		return nil, err
	}
	var r *koshin.Release
	err := db.update(ctx, func(tx *sql.Tx) (err error) {
		if r, err = lockRelease(ctx, tx, name, forNoKeyUpdate); err != nil || r.Revoked {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE releases SET revoked = $2, revoked_at = $3 WHERE name = $1`,
			name, true, now.UnixMicro()); err != nil {
			return err
		}
		if err := haltReleaseRollouts(ctx, tx, name, now); err != nil {
			return err
		}
		r, err = findRelease(ctx, tx, name)
		return err
	})
	return r, err
}

// haltReleaseRollouts halts every running or paused rollout of a release.
func haltReleaseRollouts(ctx context.Context, tx *sql.Tx, name string, now time.Time) error {
	// Locking the rows re-checks their state after any concurrent change
	// commits, so a rollout aborted meanwhile is skipped, not refused.
	rows, err := tx.QueryContext(ctx, `SELECT id FROM rollouts WHERE release_name = $1 AND state IN ('running', 'paused')
		ORDER BY id FOR NO KEY UPDATE`, name)
	if err != nil {
		return err
	}
	ids, err := collect(rows, func(s scanner) (id int64, err error) { return id, s.Scan(&id) })
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, _, err := stopRollout(ctx, tx, id, koshin.RolloutHalted, "release "+name+" revoked", now); err != nil {
			return err
		}
	}
	return nil
}
