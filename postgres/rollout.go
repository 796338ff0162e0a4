package postgres

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"time"

	"github.com/koshin-ota/koshin"
)

const rolloutColumns = `id, name, release_name, selector, phases, threshold, silence_timeout, maintenance_window,
	rate_per_minute, mode, stratify_tags, seed, state, halt_reason, phase, phase_started_at, eligible,
	created_by, created_at, updated_at, started_at, finished_at`

func scanRollout(s scanner) (*koshin.Rollout, error) {
	var r koshin.Rollout
	var sel, phases, th, win, strat string
	var silence int64
	var phaseStart, created, updated, started, finished sql.NullInt64
	if err := s.Scan(&r.ID, &r.Name, &r.ReleaseName, &sel, &phases, &th, &silence, &win,
		&r.RatePerMinute, &r.Mode, &strat, &r.Seed, &r.State, &r.HaltReason, &r.Phase, &phaseStart, &r.Eligible,
		&r.CreatedBy, &created, &updated, &started, &finished); err != nil {
		return nil, err
	}
	r.SilenceTimeout = time.Duration(silence)
	r.PhaseStartedAt, r.CreatedAt, r.UpdatedAt = timeOf(phaseStart), timeOf(created), timeOf(updated)
	r.StartedAt, r.FinishedAt = timeOf(started), timeOf(finished)
	for _, c := range []struct {
		text string
		v    any
	}{{sel, &r.Selector}, {phases, &r.Phases}, {th, &r.Threshold}, {strat, &r.StratifyTags}} {
		if err := fromJSON(c.text, c.v); err != nil {
			return nil, err
		}
	}
	if win != "" {
		r.Window = new(koshin.MaintenanceWindow)
		return &r, fromJSON(win, r.Window)
	}
	return &r, nil
}

// rolloutJSON encodes the nested definition columns.
func rolloutJSON(r *koshin.Rollout) (sel, phases, th, win, strat string, err error) {
	enc := func(v any) string {
		if err != nil {
			return ""
		}
		var s string
		s, err = jsonText(v)
		return s
	}
	sel, phases, th, strat = enc(r.Selector), enc(r.Phases), enc(r.Threshold), enc(r.StratifyTags)
	if r.Window != nil {
		win = enc(r.Window)
	}
	return sel, phases, th, win, strat, err
}

// CreateRollout implements koshin.RolloutStore.
func (db *DB) CreateRollout(ctx context.Context, r *koshin.Rollout) error {
	if err := r.Validate(); err != nil {
		return err
	}
	now := db.now()
	for r.Seed == 0 {
		r.Seed = rand.Int64() // not secret: it only makes the plan reproducible
	}
	r.State, r.HaltReason, r.Phase, r.Eligible = koshin.RolloutDraft, "", 0, 0
	r.CreatedAt, r.UpdatedAt, r.PhaseStartedAt, r.StartedAt, r.FinishedAt = now, now, time.Time{}, time.Time{}, time.Time{}
	sel, phases, th, win, strat, err := rolloutJSON(r)
	if err != nil {
		return err
	}
	return db.update(ctx, func(tx *sql.Tx) error {
		rel, err := lockRelease(ctx, tx, r.ReleaseName, forShare)
		if err != nil {
			return err
		}
		if rel.Revoked {
			return koshin.Errorf(koshin.ECONFLICT, "Release %s is revoked.", rel.Name)
		}
		return tx.QueryRowContext(ctx, `INSERT INTO rollouts (name, release_name, selector, phases, threshold,
			silence_timeout, maintenance_window, rate_per_minute, mode, stratify_tags, seed, state, created_by, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14) RETURNING id`,
			r.Name, r.ReleaseName, sel, phases, th, int64(r.SilenceTimeout), win, r.RatePerMinute, r.Mode, strat,
			r.Seed, r.State, r.CreatedBy, now.UnixMicro()).Scan(&r.ID)
	})
}

// FindRolloutByID implements koshin.RolloutStore.
func (db *DB) FindRolloutByID(ctx context.Context, id int64) (*koshin.Rollout, error) {
	return findRollout(ctx, db.db, id)
}

func findRollout(ctx context.Context, q queryer, id int64) (*koshin.Rollout, error) {
	r, err := scanRollout(q.QueryRowContext(ctx, `SELECT `+rolloutColumns+` FROM rollouts WHERE id = $1`, id))
	if err != nil {
		return nil, notFound(err, "Rollout %d not found.", id)
	}
	return r, nil
}

// lockRollout reads a rollout and locks its row until the transaction
// ends: every change to a rollout (state, phase, parameters, new
// assignments) holds this lock, so replicas apply them one at a time and
// each sees the previous one's result.
func lockRollout(ctx context.Context, tx *sql.Tx, id int64) (*koshin.Rollout, error) {
	r, err := scanRollout(tx.QueryRowContext(ctx, `SELECT `+rolloutColumns+` FROM rollouts WHERE id = $1 FOR NO KEY UPDATE`, id))
	if err != nil {
		return nil, notFound(err, "Rollout %d not found.", id)
	}
	return r, nil
}

// lockRolloutRelease locks the release of rollout id FOR SHARE and then the
// rollout, in the order RevokeRelease takes them (release, then its
// rollouts), so that starting or resuming a rollout cannot deadlock with
// revoking its release. A rollout's release never changes, so reading the
// name without a lock first is safe.
func lockRolloutRelease(ctx context.Context, tx *sql.Tx, id int64) (*koshin.Rollout, *koshin.Release, error) {
	var name string
	if err := tx.QueryRowContext(ctx, `SELECT release_name FROM rollouts WHERE id = $1`, id).Scan(&name); err != nil {
		return nil, nil, notFound(err, "Rollout %d not found.", id)
	}
	rel, err := lockRelease(ctx, tx, name, forShare)
	if err != nil {
		return nil, nil, err
	}
	r, err := lockRollout(ctx, tx, id)
	return r, rel, err
}

// FindRollouts implements koshin.RolloutStore.
func (db *DB) FindRollouts(ctx context.Context, f koshin.RolloutFilter) ([]*koshin.Rollout, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	limit, _ := koshin.Limit(f.Page.Limit)
	var q query
	if f.State != "" {
		q.where("state = " + q.arg(string(f.State)))
	}
	if f.ReleaseName != "" {
		q.where("release_name = " + q.arg(f.ReleaseName))
	}
	order := q.seqPage("id", f.Page.Cursor, f.Page.Desc, limit)
	rows, err := db.db.QueryContext(ctx, `SELECT `+rolloutColumns+` FROM rollouts`+q.clause()+order, q.args...)
	if err != nil {
		return nil, mapError(err)
	}
	return collect(rows, scanRollout)
}

// UpdateRollout implements koshin.RolloutStore.
func (db *DB) UpdateRollout(ctx context.Context, id int64, upd koshin.RolloutUpdate, now time.Time) (*koshin.Rollout, error) {
	var r *koshin.Rollout
	err := db.update(ctx, func(tx *sql.Tx) (err error) {
		if r, err = lockRollout(ctx, tx, id); err != nil {
			return err
		}
		if r.State.Terminal() {
			return koshin.Errorf(koshin.ECONFLICT, "Rollout %d is %s.", id, r.State)
		}
		if err := upd.Apply(r); err != nil {
			return err
		}
		r.UpdatedAt = utcMicro(now)
		_, _, th, win, _, err := rolloutJSON(r)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE rollouts SET threshold = $2, silence_timeout = $3, maintenance_window = $4,
			rate_per_minute = $5, updated_at = $6 WHERE id = $1`,
			id, th, int64(r.SilenceTimeout), win, r.RatePerMinute, r.UpdatedAt.UnixMicro())
		return err
	})
	return r, err
}

// saveRolloutState writes the fields state changes touch.
func saveRolloutState(ctx context.Context, tx *sql.Tx, r *koshin.Rollout, now time.Time) error {
	r.UpdatedAt = utcMicro(now)
	_, err := tx.ExecContext(ctx, `UPDATE rollouts SET state = $2, halt_reason = $3, phase = $4, phase_started_at = $5,
		eligible = $6, updated_at = $7, started_at = $8, finished_at = $9 WHERE id = $1`,
		r.ID, r.State, r.HaltReason, r.Phase, micros(r.PhaseStartedAt), r.Eligible, r.UpdatedAt.UnixMicro(),
		micros(r.StartedAt), micros(r.FinishedAt))
	return err
}

// transition locks a rollout (and, when withRelease, its release first),
// checks the state machine allows to, lets mutate adjust it, and saves it:
// the shape of every lifecycle method. mutate gets the release when
// withRelease is set, nil otherwise.
func (db *DB) transition(ctx context.Context, id int64, to koshin.RolloutState, now time.Time, withRelease bool,
	mutate func(*sql.Tx, *koshin.Rollout, *koshin.Release) error) (*koshin.Rollout, error) {
	var r *koshin.Rollout
	err := db.update(ctx, func(tx *sql.Tx) (err error) {
		var rel *koshin.Release
		if withRelease {
			r, rel, err = lockRolloutRelease(ctx, tx, id)
		} else {
			r, err = lockRollout(ctx, tx, id)
		}
		if err != nil {
			return err
		}
		if !r.State.CanBecome(to) {
			return koshin.Errorf(koshin.ECONFLICT, "Rollout %d is %s and cannot become %s.", id, r.State, to)
		}
		r.State = to
		if err := mutate(tx, r, rel); err != nil {
			return err
		}
		return saveRolloutState(ctx, tx, r, now)
	})
	return r, err
}

// StartRollout implements koshin.RolloutStore.
func (db *DB) StartRollout(ctx context.Context, id int64, now time.Time) (*koshin.Rollout, error) {
	now = utcMicro(now)
	return db.transition(ctx, id, koshin.RolloutRunning, now, true, func(tx *sql.Tx, r *koshin.Rollout, rel *koshin.Release) error {
		if !r.StartedAt.IsZero() {
			return koshin.Errorf(koshin.ECONFLICT, "Rollout %d has started already.", id)
		}
		if rel.Revoked {
			return koshin.Errorf(koshin.ECONFLICT, "Release %s is revoked.", rel.Name)
		}
		cands, err := eligibleCandidates(ctx, tx, r, rel)
		if err != nil {
			return err
		}
		members := koshin.PlanPhases(cands, koshin.PhaseSizes(r.Phases, len(cands)), r.Seed)
		if err := insertMembers(ctx, tx, r.ID, members); err != nil {
			return err
		}
		r.Phase, r.PhaseStartedAt, r.StartedAt, r.Eligible = 0, now, now, len(cands)
		return nil
	})
}

// eligibleCandidates loads the active devices of the release's hardware and
// keeps those the selector matches (koshin.Selector.Eligible), with their
// sampling strata.
func eligibleCandidates(ctx context.Context, tx *sql.Tx, r *koshin.Rollout, rel *koshin.Release) ([]koshin.Candidate, error) {
	var q query
	q.where("status = 'active'")
	q.where("hardware_id IN (SELECT hardware_id FROM release_hardware WHERE release_name = " + q.arg(rel.Name) + ")")
	// The inventory is read for the agent's updates setting, which
	// Selector.Eligible checks (CCDS UPE05).
	rows, err := tx.QueryContext(ctx, `SELECT id, hardware_id, group_name, tags, status, inventory FROM devices`+q.clause()+` ORDER BY id`, q.args...)
	if err != nil {
		return nil, err
	}
	devices, err := collect(rows, func(s scanner) (*koshin.Device, error) {
		var d koshin.Device
		var tags, inv string
		if err := s.Scan(&d.ID, &d.HardwareID, &d.Group, &tags, &d.Status, &inv); err != nil {
			return nil, err
		}
		if err := fromJSON(inv, &d.Inventory); err != nil {
			return nil, err
		}
		return &d, fromJSON(tags, &d.Tags)
	})
	if err != nil {
		return nil, err
	}
	var cands []koshin.Candidate
	for _, d := range devices {
		if r.Selector.Eligible(d, rel) {
			cands = append(cands, koshin.Candidate{DeviceID: d.ID, Stratum: koshin.Stratum(d, r.StratifyTags)})
		}
	}
	return cands, nil
}

// memberBatch is how many plan rows one INSERT carries, as three arrays:
// a fleet of a million devices is planned in a hundred statements of a
// few megabytes each.
const memberBatch = 10000

func insertMembers(ctx context.Context, tx *sql.Tx, rolloutID int64, members []koshin.Member) error {
	for len(members) > 0 {
		n := min(len(members), memberBatch)
		ids, phases, ranks := make([]string, n), make([]int32, n), make([]int32, n)
		for i, m := range members[:n] {
			ids[i], phases[i], ranks[i] = m.DeviceID, int32(m.Phase), int32(m.Rank)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO rollout_members (rollout_id, device_id, phase, rank, state)
			SELECT $1, u.device_id, u.phase, u.rank, 'planned' FROM unnest($2::text[], $3::int[], $4::int[]) AS u (device_id, phase, rank)`,
			rolloutID, ids, phases, ranks); err != nil {
			return err
		}
		members = members[n:]
	}
	return nil
}

// AdvanceRollout implements koshin.RolloutStore. It does not check that the
// phase is done: that is the engine's (koshin.Rollout.Decide) or an
// operator's decision.
func (db *DB) AdvanceRollout(ctx context.Context, id int64, from int, now time.Time) (*koshin.Rollout, error) {
	var r *koshin.Rollout
	err := db.update(ctx, func(tx *sql.Tx) (err error) {
		if r, err = lockRollout(ctx, tx, id); err != nil {
			return err
		}
		if r.State != koshin.RolloutRunning || r.Phase != from {
			return koshin.Errorf(koshin.ECONFLICT, "Rollout %d is %s in phase %d, not running in phase %d.", id, r.State, r.Phase, from)
		}
		if r.LastPhase() {
			r.State, r.FinishedAt = koshin.RolloutCompleted, utcMicro(now)
		} else {
			r.Phase, r.PhaseStartedAt = r.Phase+1, utcMicro(now)
		}
		return saveRolloutState(ctx, tx, r, now)
	})
	return r, err
}

// PauseRollout implements koshin.RolloutStore.
func (db *DB) PauseRollout(ctx context.Context, id int64, now time.Time) (*koshin.Rollout, error) {
	return db.transition(ctx, id, koshin.RolloutPaused, now, false, func(*sql.Tx, *koshin.Rollout, *koshin.Release) error { return nil })
}

// ResumeRollout implements koshin.RolloutStore. A rollout whose release was
// revoked cannot resume.
func (db *DB) ResumeRollout(ctx context.Context, id int64, now time.Time) (*koshin.Rollout, error) {
	return db.transition(ctx, id, koshin.RolloutRunning, now, true, func(tx *sql.Tx, r *koshin.Rollout, rel *koshin.Release) error {
		if r.StartedAt.IsZero() {
			return koshin.Errorf(koshin.ECONFLICT, "Rollout %d has not started; start it instead.", id)
		}
		if rel.Revoked {
			return koshin.Errorf(koshin.ECONFLICT, "Release %s is revoked; the rollout cannot resume.", rel.Name)
		}
		r.HaltReason = ""
		return nil
	})
}

// HaltRollout implements koshin.RolloutStore.
func (db *DB) HaltRollout(ctx context.Context, id int64, reason string, now time.Time) (*koshin.Rollout, int, error) {
	return db.stop(ctx, id, koshin.RolloutHalted, reason, now)
}

// AbortRollout implements koshin.RolloutStore.
func (db *DB) AbortRollout(ctx context.Context, id int64, reason string, now time.Time) (*koshin.Rollout, int, error) {
	return db.stop(ctx, id, koshin.RolloutAborted, reason, now)
}

func (db *DB) stop(ctx context.Context, id int64, to koshin.RolloutState, reason string, now time.Time) (*koshin.Rollout, int, error) {
	if reason == "" || len(reason) > koshin.MaxHaltReasonLen {
		return nil, 0, koshin.Errorf(koshin.EINVALID, "A reason of 1-%d bytes is required.", koshin.MaxHaltReasonLen)
	}
	var r *koshin.Rollout
	var n int
	err := db.update(ctx, func(tx *sql.Tx) (err error) {
		r, n, err = stopRollout(ctx, tx, id, to, reason, now)
		return err
	})
	return r, n, err
}

// stopRollout halts or aborts a rollout and cancels its assignments that
// have not started. After a halt their members return to the plan, so
// that a resumed rollout assigns them again; an abort is final.
func stopRollout(ctx context.Context, tx *sql.Tx, id int64, to koshin.RolloutState, reason string, now time.Time) (*koshin.Rollout, int, error) {
	r, err := lockRollout(ctx, tx, id)
	if err != nil {
		return nil, 0, err
	}
	if !r.State.CanBecome(to) {
		return nil, 0, koshin.Errorf(koshin.ECONFLICT, "Rollout %d is %s and cannot become %s.", id, r.State, to)
	}
	r.State, r.HaltReason = to, reason
	if to == koshin.RolloutAborted {
		r.FinishedAt = utcMicro(now)
	}
	var q query
	q.where("rollout_id = " + q.arg(id))
	q.where("state IN (" + q.placeholders(notStartedStates()...) + ")")
	cancelled, err := cancelAssignments(ctx, tx, &q, "rollout "+string(to)+": "+reason, now)
	if err != nil {
		return nil, 0, err
	}
	if to == koshin.RolloutHalted {
		if err := replan(ctx, tx, id, cancelled); err != nil {
			return nil, 0, err
		}
	}
	return r, len(cancelled), saveRolloutState(ctx, tx, r, now)
}

// notStartedStates are the active states a halt cancels.
func notStartedStates() []any {
	var out []any
	for _, s := range koshin.AssignmentStates() {
		if s.Active() && !s.Started() {
			out = append(out, string(s))
		}
	}
	return out
}

func replan(ctx context.Context, tx *sql.Tx, rolloutID int64, assignmentIDs []int64) error {
	if len(assignmentIDs) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `UPDATE rollout_members SET state = 'planned', assignment_id = NULL
		WHERE rollout_id = $1 AND assignment_id = ANY($2)`, rolloutID, assignmentIDs)
	return err
}
