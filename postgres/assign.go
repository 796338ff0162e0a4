package postgres

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"github.com/koshin-ota/koshin"
)

// AssignNext implements koshin.RolloutStore. Three mechanisms make it safe
// with any number of replicas:
//
//   - The rollout row is locked first, so AssignNext, halt, abort, pause
//     and advance of one rollout run one after another, and no device is
//     assigned by a rollout that has just stopped or moved on.
//   - The candidate devices are locked FOR KEY SHARE, rechecking that they
//     are active, in device-ID order. DecommissionDevice locks its device
//     FOR UPDATE, so a device is either decommissioned before (and skipped)
//     or after (and its new assignment cancelled) — never half. Check-ins
//     (FOR NO KEY UPDATE) do not wait on this lock.
//   - Each insert is ON CONFLICT DO NOTHING against the partial unique
//     index assignments_one_active. Two rollouts racing for one device on
//     different replicas: the second insert waits for the first
//     transaction, then inserts nothing, and the device stays planned.
//     Inserting in device-ID order means two such transactions wait on
//     each other in one direction only, never in a cycle.
func (db *DB) AssignNext(ctx context.Context, id int64, phase, n int, now time.Time) ([]*koshin.Assignment, error) {
	if n < 1 || n > koshin.MaxLimit {
		return nil, koshin.Errorf(koshin.EINVALID, "Assign between 1 and %d devices at a time.", koshin.MaxLimit)
	}
	var out []*koshin.Assignment
	err := db.update(ctx, func(tx *sql.Tx) error {
		out = nil
		r, err := lockRollout(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.State != koshin.RolloutRunning || r.Phase != phase {
			return koshin.Errorf(koshin.ECONFLICT, "Rollout %d is %s in phase %d, not running in phase %d.", id, r.State, r.Phase, phase)
		}
		if out, err = assignBatch(ctx, tx, r, n, now); err != nil {
			return err
		}
		return nil
	})
	return out, err
}

// assignBatch assigns up to n members of the rollout's current phase. A
// pass can come up short when devices were decommissioned or assigned by
// another rollout after the plan was read; those leave the candidate list
// (retired, or busy), so the next pass draws further members. Every pass
// either assigns or removes a candidate, or stops, so the loop ends.
func assignBatch(ctx context.Context, tx *sql.Tx, r *koshin.Rollout, n int, now time.Time) ([]*koshin.Assignment, error) {
	var out []*koshin.Assignment
	rank := map[string]int{}
	for len(out) < n {
		if err := skipRetired(ctx, tx, r.ID, r.Phase); err != nil {
			return nil, err
		}
		ids, err := nextMembers(ctx, tx, r.ID, r.Phase, n-len(out))
		if err != nil || len(ids) == 0 {
			return out, err
		}
		for _, d := range ids {
			rank[d] = len(rank)
		}
		active, err := lockActiveDevices(ctx, tx, ids)
		if err != nil {
			return nil, err
		}
		got, err := assignMembers(ctx, tx, r, active, now)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
		if len(got) == 0 && len(active) == len(ids) {
			break // all busy elsewhere; they wait for a later call
		}
	}
	// Report in plan order, as the interface promises.
	slices.SortFunc(out, func(a, b *koshin.Assignment) int { return rank[a.DeviceID] - rank[b.DeviceID] })
	return out, nil
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

// lockActiveDevices locks the listed devices that are still active, in
// device-ID order (the sort comes before the lock), and returns their IDs in
// that order.
func lockActiveDevices(ctx context.Context, tx *sql.Tx, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT id FROM devices WHERE id = ANY($1) AND status = 'active'
		ORDER BY id FOR KEY SHARE`, ids)
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
