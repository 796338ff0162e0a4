package postgres

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/koshin-ota/koshin"
)

const eventColumns = `seq, device_id, event_id, type, release_name, reason, detail, device_time, received_at, assignment_id`

func scanEvent(s scanner) (*koshin.Event, error) {
	var e koshin.Event
	var devTime, received sql.NullInt64
	if err := s.Scan(&e.Seq, &e.DeviceID, &e.EventID, &e.Type, &e.ReleaseName, &e.Reason, &e.Detail,
		&devTime, &received, &e.AssignmentID); err != nil {
		return nil, err
	}
	e.DeviceTime, e.ReceivedAt = timeOf(devTime), timeOf(received)
	return &e, nil
}

// RecordEvent implements koshin.EventStore. Storing the event and moving
// the assignment happen in one transaction: an event is counted exactly
// when it is stored, and a retry after a lost acknowledgement finds it
// stored and changes nothing.
//
// The transaction starts by locking the device's row, so one device's
// events are applied one at a time whichever replicas receive them: a
// retried report racing its original waits, then finds it stored (the
// statements after the lock see the first transaction's commit) instead of
// failing on the (device, event ID) unique constraint. The lock also
// orders events against DecommissionDevice.
func (db *DB) RecordEvent(ctx context.Context, e *koshin.Event, now time.Time) (bool, error) {
	if err := e.Validate(); err != nil {
		return false, err
	}
	created := false
	err := db.update(ctx, func(tx *sql.Tx) error {
		created = false
		var status koshin.DeviceStatus
		if err := tx.QueryRowContext(ctx, `SELECT status FROM devices WHERE id = $1 FOR NO KEY UPDATE`, e.DeviceID).Scan(&status); err != nil {
			return notFound(err, "Device %s not found.", e.DeviceID)
		}
		stored, err := scanEvent(tx.QueryRowContext(ctx, `SELECT `+eventColumns+` FROM events
			WHERE device_id = $1 AND event_id = $2`, e.DeviceID, e.EventID))
		if err == nil {
			*e = *stored
			return nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if status != koshin.DeviceActive {
			return koshin.Errorf(koshin.EFORBIDDEN, "Device %s is %s.", e.DeviceID, status)
		}
		if err := applyEvent(ctx, tx, e, now); err != nil {
			return err
		}
		created = true
		e.ReceivedAt, e.DeviceTime = utcMicro(now), utcMicro(e.DeviceTime)
		return tx.QueryRowContext(ctx, `INSERT INTO events
			(device_id, event_id, type, release_name, reason, detail, device_time, received_at, assignment_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq`,
			e.DeviceID, e.EventID, e.Type, e.ReleaseName, e.Reason, e.Detail, micros(e.DeviceTime),
			e.ReceivedAt.UnixMicro(), e.AssignmentID).Scan(&e.Seq)
	})
	return created && err == nil, err
}

// applyEvent moves the device's active assignment for the event's release,
// if there is one and the event means progress (AssignmentState.Next).
func applyEvent(ctx context.Context, tx *sql.Tx, e *koshin.Event, now time.Time) error {
	e.AssignmentID = 0
	if e.ReleaseName == "" {
		return nil
	}
	a, err := scanAssignment(tx.QueryRowContext(ctx, `SELECT `+assignmentColumns+` FROM assignments
		WHERE device_id = $1 AND active = $2 AND release_name = $3 FOR NO KEY UPDATE`, e.DeviceID, true, e.ReleaseName))
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	} else if err != nil {
		return err
	}
	next, changed := a.State.Next(e.Type, a.Mode)
	if !changed {
		return nil
	}
	r, err := findRollout(ctx, tx, a.RolloutID)
	if err != nil {
		return err
	}
	e.AssignmentID = a.ID
	return setAssignmentState(ctx, tx, a, next, e.Reason, r.Deadline(next, now), now)
}

// FindEvents implements koshin.EventStore.
func (db *DB) FindEvents(ctx context.Context, f koshin.EventFilter) ([]*koshin.Event, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	limit, _ := koshin.Limit(f.Page.Limit)
	var q query
	if f.DeviceID != "" {
		q.where("device_id = " + q.arg(f.DeviceID))
	}
	if f.Type != "" {
		q.where("type = " + q.arg(string(f.Type)))
	}
	if !f.Since.IsZero() {
		q.where("received_at >= " + q.arg(f.Since.UnixMicro()))
	}
	order := q.seqPage("seq", f.Page.Cursor, f.Page.Desc, limit)
	rows, err := db.db.QueryContext(ctx, `SELECT `+eventColumns+` FROM events`+q.clause()+order, q.args...)
	if err != nil {
		return nil, mapError(err)
	}
	return collect(rows, scanEvent)
}

// CountEventsByType implements koshin.EventStore.
func (db *DB) CountEventsByType(ctx context.Context, since time.Time) (map[koshin.EventType]int, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT type, COUNT(*) FROM events WHERE received_at >= $1 GROUP BY type`,
		since.UnixMicro())
	if err != nil {
		return nil, mapError(err)
	}
	type count struct {
		t koshin.EventType
		n int
	}
	counts, err := collect(rows, func(s scanner) (c count, err error) { return c, s.Scan(&c.t, &c.n) })
	out := make(map[koshin.EventType]int, len(counts))
	for _, c := range counts {
		out[c.t] = c.n
	}
	return out, err
}
