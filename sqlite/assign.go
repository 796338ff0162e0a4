package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/koshin-ota/koshin"
)

// AssignNext implements koshin.RolloutStore. Candidates come from the plan
// in rank order, skipping devices with an active assignment elsewhere.
// Each insert is ON CONFLICT DO NOTHING against the one-active-assignment
// index, so even if another writer (a second replica on PostgreSQL)
// assigns the same device between our SELECT and INSERT, the device simply
// is not assigned twice: we skip it and it stays planned.
func (db *DB) AssignNext(ctx context.Context, id int64, phase, n int, now time.Time) ([]*koshin.Assignment, error) {
	if n < 1 || n > koshin.MaxLimit {
		return nil, koshin.Errorf(koshin.EINVALID, "Assign between 1 and %d devices at a time.", koshin.MaxLimit)
	}
	var out []*koshin.Assignment
	err := db.update(ctx, func(tx *sql.Tx) error {
		r, err := findRollout(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.State != koshin.RolloutRunning || r.Phase != phase {
			return koshin.Errorf(koshin.ECONFLICT, "Rollout %d is %s in phase %d, not running in phase %d.", id, r.State, r.Phase, phase)
		}
		if err := skipRetired(ctx, tx, id, phase); err != nil {
			return err
		}
		ids, err := nextMembers(ctx, tx, id, phase, n)
		if err != nil {
			return err
		}
		out, err = assignMembers(ctx, tx, r, ids, now)
		return err
	})
	return out, err
}

// skipRetired drops decommissioned devices from the phase's plan.
func skipRetired(ctx context.Context, tx *sql.Tx, id int64, phase int) error {
	_, err := tx.ExecContext(ctx, `UPDATE rollout_members SET state = 'skipped'
		WHERE rollout_id = $1 AND phase = $2 AND state = 'planned'
		AND device_id IN (SELECT d.id FROM devices d WHERE d.status <> 'active')`, id, phase)
	return err
}

func nextMembers(ctx context.Context, tx *sql.Tx, id int64, phase, n int) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT m.device_id FROM rollout_members m
		WHERE m.rollout_id = $1 AND m.phase = $2 AND m.state = 'planned'
		AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.device_id = m.device_id AND a.active = $3)
		ORDER BY m.rank LIMIT $4`, id, phase, true, n)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(s scanner) (d string, err error) { return d, s.Scan(&d) })
}

func assignMembers(ctx context.Context, tx *sql.Tx, r *koshin.Rollout, deviceIDs []string, now time.Time) ([]*koshin.Assignment, error) {
	state := r.InitialAssignmentState()
	var out []*koshin.Assignment
	for _, dev := range deviceIDs {
		a := &koshin.Assignment{
			RolloutID: r.ID, DeviceID: dev, Phase: r.Phase, ReleaseName: r.ReleaseName, Mode: r.Mode, State: state,
			CreatedAt: utcMicro(now), UpdatedAt: utcMicro(now), Deadline: utcMicro(r.Deadline(state, now)),
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO assignments
			(rollout_id, device_id, phase, release_name, mode, state, active, created_at, updated_at, deadline)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) ON CONFLICT DO NOTHING RETURNING id`,
			a.RolloutID, a.DeviceID, a.Phase, a.ReleaseName, a.Mode, a.State, true, now.UnixMicro(), micros(a.Deadline)).Scan(&a.ID)
		if errors.Is(err, sql.ErrNoRows) {
			continue // assigned elsewhere meanwhile; it stays planned
		} else if err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE rollout_members SET state = 'assigned', assignment_id = $3
			WHERE rollout_id = $1 AND device_id = $2`, r.ID, dev, a.ID); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}
