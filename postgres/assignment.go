package postgres

import (
	"context"
	"database/sql"
	"time"

	"github.com/koshin-ota/koshin"
)

const assignmentColumns = `id, rollout_id, device_id, phase, release_name, mode, state, reason,
	created_at, updated_at, deadline, finished_at`

func scanAssignment(s scanner) (*koshin.Assignment, error) {
	var a koshin.Assignment
	var created, updated, deadline, finished sql.NullInt64
	if err := s.Scan(&a.ID, &a.RolloutID, &a.DeviceID, &a.Phase, &a.ReleaseName, &a.Mode, &a.State, &a.Reason,
		&created, &updated, &deadline, &finished); err != nil {
		return nil, err
	}
	a.CreatedAt, a.UpdatedAt, a.Deadline, a.FinishedAt = timeOf(created), timeOf(updated), timeOf(deadline), timeOf(finished)
	return &a, nil
}

// FindAssignmentByID implements koshin.AssignmentStore.
func (db *DB) FindAssignmentByID(ctx context.Context, id int64) (*koshin.Assignment, error) {
	return findAssignment(ctx, db.db, id)
}

func findAssignment(ctx context.Context, q queryer, id int64) (*koshin.Assignment, error) {
	return scanAssignmentRow(q.QueryRowContext(ctx, `SELECT `+assignmentColumns+` FROM assignments WHERE id = $1`, id), id)
}

// lockAssignment reads an assignment and locks its row, so that the state
// the transition is checked against is the state it is applied to.
func lockAssignment(ctx context.Context, tx *sql.Tx, id int64) (*koshin.Assignment, error) {
	return scanAssignmentRow(tx.QueryRowContext(ctx, `SELECT `+assignmentColumns+` FROM assignments WHERE id = $1 FOR NO KEY UPDATE`, id), id)
}

func scanAssignmentRow(row *sql.Row, id int64) (*koshin.Assignment, error) {
	a, err := scanAssignment(row)
	if err != nil {
		return nil, notFound(err, "Assignment %d not found.", id)
	}
	return a, nil
}

// FindActiveAssignment implements koshin.AssignmentStore: one indexed
// lookup (the partial unique index), since every check-in asks.
func (db *DB) FindActiveAssignment(ctx context.Context, deviceID string) (*koshin.Assignment, error) {
	if err := validDeviceID(deviceID); err != nil {
		return nil, err
	}
	a, err := scanAssignment(db.db.QueryRowContext(ctx, findActiveQuery, deviceID, true))
	if err != nil {
		return nil, notFound(err, "Device %s has no active assignment.", deviceID)
	}
	return a, nil
}

const findActiveQuery = `SELECT ` + assignmentColumns + ` FROM assignments WHERE device_id = $1 AND active = $2`

// FindAssignments implements koshin.AssignmentStore.
func (db *DB) FindAssignments(ctx context.Context, f koshin.AssignmentFilter) ([]*koshin.Assignment, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	limit, _ := koshin.Limit(f.Page.Limit)
	var q query
	if f.RolloutID != 0 {
		q.where("rollout_id = " + q.arg(f.RolloutID))
	}
	if f.DeviceID != "" {
		q.where("device_id = " + q.arg(f.DeviceID))
	}
	if f.Phase != nil {
		q.where("phase = " + q.arg(*f.Phase))
	}
	if f.State != "" {
		q.where("state = " + q.arg(string(f.State)))
	}
	order := q.seqPage("id", f.Page.Cursor, f.Page.Desc, limit)
	rows, err := db.db.QueryContext(ctx, `SELECT `+assignmentColumns+` FROM assignments`+q.clause()+order, q.args...)
	if err != nil {
		return nil, mapError(err)
	}
	return collect(rows, scanAssignment)
}

// TransitionAssignment implements koshin.AssignmentStore.
func (db *DB) TransitionAssignment(ctx context.Context, id int64, to koshin.AssignmentState, reason string, now time.Time) (*koshin.Assignment, error) {
	if err := to.Validate(); err != nil {
		return nil, err
	}
	if len(reason) > koshin.MaxShortLen {
		return nil, koshin.Errorf(koshin.EINVALID, "Reason must be at most %d bytes.", koshin.MaxShortLen)
	}
	var a *koshin.Assignment
	err := db.update(ctx, func(tx *sql.Tx) (err error) {
		if a, err = lockAssignment(ctx, tx, id); err != nil {
			return err
		}
		if !a.State.CanTransition(to) {
			return koshin.Errorf(koshin.ECONFLICT, "Assignment %d is %s and cannot become %s.", id, a.State, to)
		}
		r, err := findRollout(ctx, tx, a.RolloutID)
		if err != nil {
			return err
		}
		return setAssignmentState(ctx, tx, a, to, reason, r.Deadline(to, now), now)
	})
	return a, err
}

// setAssignmentState moves a to state, guarded by its current state so that
// a concurrent writer's change is never overwritten (ECONFLICT instead).
func setAssignmentState(ctx context.Context, tx *sql.Tx, a *koshin.Assignment, to koshin.AssignmentState,
	reason string, deadline, now time.Time) error {
	finished := time.Time{}
	if !to.Active() {
		finished = now
	}
	res, err := tx.ExecContext(ctx, `UPDATE assignments SET state = $3, active = $4, reason = $5, updated_at = $6,
		deadline = $7, finished_at = $8 WHERE id = $1 AND state = $2`,
		a.ID, a.State, to, to.Active(), reason, now.UnixMicro(), micros(deadline), micros(finished))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return koshin.Errorf(koshin.ECONFLICT, "Assignment %d changed concurrently.", a.ID)
	}
	a.State, a.Reason, a.UpdatedAt = to, reason, utcMicro(now)
	a.Deadline, a.FinishedAt = utcMicro(deadline), utcMicro(finished)
	return nil
}

// ApproveAssignments implements koshin.AssignmentStore in one statement:
// an assignment a halt cancels meanwhile no longer matches the state
// condition once the halt commits, so it is skipped, not revived.
func (db *DB) ApproveAssignments(ctx context.Context, rolloutID int64, deviceIDs []string, now time.Time) (int, error) {
	if len(deviceIDs) > koshin.MaxSelectorDevices {
		return 0, koshin.Errorf(koshin.EINVALID, "At most %d devices can be approved at once.", koshin.MaxSelectorDevices)
	}
	for _, id := range deviceIDs {
		if err := validDeviceID(id); err != nil {
			return 0, err
		}
	}
	total := 0
	err := db.update(ctx, func(tx *sql.Tx) error {
		r, err := findRollout(ctx, tx, rolloutID)
		if err != nil {
			return err
		}
		var q query
		set := `UPDATE assignments SET state = 'pending', active = ` + q.arg(true) + `, updated_at = ` + q.arg(now.UnixMicro()) +
			`, deadline = ` + q.arg(r.Deadline(koshin.AssignmentPending, now).UnixMicro())
		q.where("rollout_id = " + q.arg(rolloutID))
		q.where("state = 'awaiting-approval'")
		if len(deviceIDs) > 0 {
			q.where("device_id = ANY(" + q.arg(deviceIDs) + ")")
		}
		res, err := tx.ExecContext(ctx, set+q.clause(), q.args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		total = int(n)
		return err
	})
	return total, err
}

// ExpireSilentAssignments implements koshin.AssignmentStore. An expired
// assignment finishes at its deadline, the moment it became silent, so a
// phase's soak time counts from then however late the sweep runs. An
// assignment whose deadline an event refreshes meanwhile no longer matches
// once that event commits, so it is left alone.
func (db *DB) ExpireSilentAssignments(ctx context.Context, now time.Time) (int, error) {
	n, err := db.exec(ctx, `UPDATE assignments SET state = 'silent-failed', active = $1,
		reason = 'silent past deadline', updated_at = $2, finished_at = deadline, deadline = NULL
		WHERE active = $3 AND deadline IS NOT NULL AND deadline <= $2`, false, now.UnixMicro(), true)
	return int(n), err
}

// cancelAssignments cancels the active assignments matching q's conditions
// and returns their IDs.
func cancelAssignments(ctx context.Context, tx *sql.Tx, q *query, reason string, now time.Time) ([]int64, error) {
	q.where("active = " + q.arg(true))
	set := `UPDATE assignments SET state = 'cancelled', active = ` + q.arg(false) + `, reason = ` + q.arg(truncate(reason, koshin.MaxShortLen)) +
		`, updated_at = ` + q.arg(now.UnixMicro()) + `, finished_at = ` + q.arg(now.UnixMicro()) + `, deadline = NULL`
	rows, err := tx.QueryContext(ctx, set+q.clause()+` RETURNING id`, q.args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(s scanner) (id int64, err error) { return id, s.Scan(&id) })
}

// truncate shortens s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}
