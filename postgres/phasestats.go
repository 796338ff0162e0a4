package postgres

import (
	"context"
	"database/sql"
	"time"

	"github.com/koshin-ota/koshin"
)

// FindPhaseStats implements koshin.RolloutStore.
func (db *DB) FindPhaseStats(ctx context.Context, id int64, phase int, now time.Time) (*koshin.PhaseStats, error) {
	if phase < 0 || phase >= koshin.MaxPhases {
		return nil, koshin.Errorf(koshin.EINVALID, "Phase must be between 0 and %d.", koshin.MaxPhases-1)
	}
	// REPEATABLE READ: one snapshot for all counts (at READ COMMITTED each
	// statement would see a different moment of a busy rollout).
	tx, err := db.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, mapError(err)
	}
	defer tx.Rollback()
	if _, err := findRollout(ctx, tx, id); err != nil {
		return nil, err
	}
	s := &koshin.PhaseStats{Phase: phase}
	if err := countMembers(ctx, tx, id, phase, s); err != nil {
		return nil, mapError(err)
	}
	if err := countAssignments(ctx, tx, id, phase, now, s); err != nil {
		return nil, mapError(err)
	}
	err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM assignments WHERE rollout_id = $1 AND created_at > $2`,
		id, now.Add(-koshin.RateWindow).UnixMicro()).Scan(&s.AssignedRecently)
	return s, mapError(err)
}

func countMembers(ctx context.Context, tx *sql.Tx, id int64, phase int, s *koshin.PhaseStats) error {
	rows, err := tx.QueryContext(ctx, `SELECT state, COUNT(*) FROM rollout_members
		WHERE rollout_id = $1 AND phase = $2 GROUP BY state`, id, phase)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return err
		}
		s.Members += n
		switch state {
		case "planned":
			s.Unassigned = n
		case "skipped":
			s.Skipped = n
		}
	}
	return rows.Err()
}

// countAssignments counts each assigned member's current assignment by
// outcome, aggregated in SQL because the last phase can hold most of the
// fleet. An active assignment past its deadline counts as failed now,
// finished at its deadline, even before the sweep marks it.
func countAssignments(ctx context.Context, tx *sql.Tx, id int64, phase int, now time.Time, s *koshin.PhaseStats) error {
	rows, err := tx.QueryContext(ctx, `SELECT a.state,
		CASE WHEN a.active = $3 AND a.deadline <= $4 THEN 1 ELSE 0 END,
		COUNT(*), MAX(a.finished_at), MAX(a.deadline)
		FROM rollout_members m JOIN assignments a ON a.id = m.assignment_id
		WHERE m.rollout_id = $1 AND m.phase = $2 AND m.state = 'assigned'
		GROUP BY 1, 2`, id, phase, true, now.UnixMicro())
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var state koshin.AssignmentState
		var overdue, n int
		var finished, deadline sql.NullInt64
		if err := rows.Scan(&state, &overdue, &n, &finished, &deadline); err != nil {
			return err
		}
		last := timeOf(finished)
		if overdue == 1 {
			state, last = koshin.AssignmentSilentFailed, timeOf(deadline)
		}
		tally(s, state, n, last)
	}
	return rows.Err()
}

func tally(s *koshin.PhaseStats, st koshin.AssignmentState, n int, lastFinished time.Time) {
	switch {
	case st == koshin.AssignmentPending || st == koshin.AssignmentAwaitingApproval:
		s.Waiting += n
	case st.Active():
		s.InProgress += n
	case st.Succeeded():
		s.Succeeded += n
	case st.Failed():
		s.Failed += n
	case st == koshin.AssignmentDeclined:
		s.Declined += n
	default:
		s.Cancelled += n
	}
	if !st.Active() && lastFinished.After(s.LastFinishedAt) {
		s.LastFinishedAt = lastFinished
	}
}
