package postgres

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/koshin-ota/koshin"
)

// errEnrollRefused is deliberately vague: a device (or an attacker) learns
// only that enrollment failed, not whether a token exists, was used or
// expired, or which field of a pre-authorisation did not match.
func errEnrollRefused() error {
	return koshin.Errorf(koshin.EUNAUTHORIZED, "Enrollment refused: the token or pre-authorisation is not valid for this device.")
}

// CreatePreAuthorizations implements koshin.EnrollmentStore.
func (db *DB) CreatePreAuthorizations(ctx context.Context, ps []*koshin.PreAuthorization) error {
	if len(ps) == 0 || len(ps) > koshin.MaxPreAuthorizations {
		return koshin.Errorf(koshin.EINVALID, "An upload holds 1-%d pre-authorisations.", koshin.MaxPreAuthorizations)
	}
	if err := validateUpload(ps); err != nil {
		return err
	}
	now := db.now()
	return db.update(ctx, func(tx *sql.Tx) error {
		for _, p := range ps {
			if err := insertPreAuthorization(ctx, tx, p, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// validateUpload validates each record and refuses duplicates within the
// upload, naming the serial.
func validateUpload(ps []*koshin.PreAuthorization) error {
	serials, keys := map[string]bool{}, map[string]bool{}
	for _, p := range ps {
		if err := p.Validate(); err != nil {
			return err
		}
		id := koshin.DeviceID(p.PublicKey)
		if serials[p.Serial] || keys[id] {
			return koshin.Errorf(koshin.ECONFLICT, "Serial %s or its key appears twice in the upload.", p.Serial)
		}
		serials[p.Serial], keys[id] = true, true
	}
	return nil
}

func insertPreAuthorization(ctx context.Context, tx *sql.Tx, p *koshin.PreAuthorization, now time.Time) error {
	id := koshin.DeviceID(p.PublicKey)
	var n int
	err := tx.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM preauthorizations WHERE serial = $1 OR device_id = $2) +
		(SELECT COUNT(*) FROM devices WHERE id = $2 OR (serial = $1 AND status = 'active'))`, p.Serial, id).Scan(&n)
	if err != nil {
		return err
	}
	if n > 0 {
		return koshin.Errorf(koshin.ECONFLICT, "Serial %s or its key is pre-authorised or enrolled already.", p.Serial)
	}
	p.Tags, p.CreatedAt, p.UsedAt, p.DeviceID = koshin.CleanTags(p.Tags), now, time.Time{}, ""
	tags, err := jsonText(p.Tags)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO preauthorizations
		(serial, hardware_id, public_key, device_id, group_name, tags, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		p.Serial, p.HardwareID, p.PublicKey, id, p.Group, tags, now.UnixMicro())
	return err
}

const preauthColumns = `serial, hardware_id, public_key, device_id, group_name, tags, created_at, used_at`

func scanPreAuthorization(s scanner) (*koshin.PreAuthorization, error) {
	var p koshin.PreAuthorization
	var tags string
	var created, used sql.NullInt64
	if err := s.Scan(&p.Serial, &p.HardwareID, &p.PublicKey, &p.DeviceID, &p.Group, &tags, &created, &used); err != nil {
		return nil, err
	}
	p.CreatedAt, p.UsedAt = timeOf(created), timeOf(used)
	if p.UsedAt.IsZero() {
		p.DeviceID = "" // the key's ID is only the device's once enrolled
	}
	return &p, fromJSON(tags, &p.Tags)
}

// FindPreAuthorizations implements koshin.EnrollmentStore.
func (db *DB) FindPreAuthorizations(ctx context.Context, f koshin.PreAuthorizationFilter) ([]*koshin.PreAuthorization, error) {
	limit, err := koshin.Limit(f.Limit)
	if err != nil {
		return nil, err
	}
	var q query
	if f.Unused {
		q.where("used_at IS NULL")
	}
	if f.After != "" {
		if err := koshin.ValidateID("Cursor", f.After); err != nil {
			return nil, err
		}
		q.where("serial > " + q.arg(f.After))
	}
	rows, err := db.db.QueryContext(ctx, `SELECT `+preauthColumns+` FROM preauthorizations`+q.clause()+
		` ORDER BY serial LIMIT `+q.arg(limit), q.args...)
	if err != nil {
		return nil, mapError(err)
	}
	return collect(rows, scanPreAuthorization)
}

// DeletePreAuthorization implements koshin.EnrollmentStore.
func (db *DB) DeletePreAuthorization(ctx context.Context, serial string) error {
	if err := koshin.ValidateID("Serial", serial); err != nil {
		return err
	}
	return db.deleteOne(ctx, `DELETE FROM preauthorizations WHERE serial = $1`, serial, "Pre-authorisation")
}

// deleteOne runs a single-row DELETE and reports ENOTFOUND if it matched
// nothing.
func (db *DB) deleteOne(ctx context.Context, stmt string, key any, what string) error {
	n, err := db.exec(ctx, stmt, key)
	if err != nil {
		return err
	}
	if n == 0 {
		return koshin.Errorf(koshin.ENOTFOUND, "%s %v not found.", what, key)
	}
	return nil
}

// CreateEnrollmentToken implements koshin.EnrollmentStore.
func (db *DB) CreateEnrollmentToken(ctx context.Context, t *koshin.EnrollmentToken) error {
	if err := t.Validate(); err != nil {
		return err
	}
	now := db.now()
	if !t.ExpiresAt.After(now) || t.ExpiresAt.Sub(now) > koshin.MaxTokenLifetime {
		return koshin.Errorf(koshin.EINVALID, "Token expiry must be in the future and within %s.", koshin.MaxTokenLifetime)
	}
	t.Tags, t.CreatedAt, t.UsedAt, t.DeviceID = koshin.CleanTags(t.Tags), now, time.Time{}, ""
	t.ExpiresAt = utcMicro(t.ExpiresAt)
	tags, err := jsonText(t.Tags)
	if err != nil {
		return err
	}
	return mapError(db.db.QueryRowContext(ctx, `INSERT INTO enrollment_tokens
		(hash, description, group_name, tags, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
		RETURNING id`, t.Hash, t.Description, t.Group, tags, t.CreatedBy, now.UnixMicro(), t.ExpiresAt.UnixMicro()).Scan(&t.ID))
}

const tokenColumns = `id, hash, description, group_name, tags, created_by, created_at, expires_at, used_at, device_id`

func scanEnrollmentToken(s scanner) (*koshin.EnrollmentToken, error) {
	var t koshin.EnrollmentToken
	var tags string
	var created, expires, used sql.NullInt64
	if err := s.Scan(&t.ID, &t.Hash, &t.Description, &t.Group, &tags, &t.CreatedBy, &created, &expires, &used, &t.DeviceID); err != nil {
		return nil, err
	}
	t.CreatedAt, t.ExpiresAt, t.UsedAt = timeOf(created), timeOf(expires), timeOf(used)
	return &t, fromJSON(tags, &t.Tags)
}

// FindEnrollmentTokens implements koshin.EnrollmentStore.
func (db *DB) FindEnrollmentTokens(ctx context.Context, p koshin.SeqPage) ([]*koshin.EnrollmentToken, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	limit, _ := koshin.Limit(p.Limit)
	var q query
	order := q.seqPage("id", p.Cursor, p.Desc, limit)
	rows, err := db.db.QueryContext(ctx, `SELECT `+tokenColumns+` FROM enrollment_tokens`+q.clause()+order, q.args...)
	if err != nil {
		return nil, mapError(err)
	}
	return collect(rows, scanEnrollmentToken)
}

// DeleteEnrollmentToken implements koshin.EnrollmentStore.
func (db *DB) DeleteEnrollmentToken(ctx context.Context, id int64) error {
	return db.deleteOne(ctx, `DELETE FROM enrollment_tokens WHERE id = $1`, id, "Enrollment token")
}

// EnrollDevice implements koshin.EnrollmentStore. The credential is
// consumed with a conditional UPDATE in the same transaction that inserts
// the device: if the insert fails the credential stays usable, and of two
// devices racing for one token exactly one matches "used_at IS NULL".
func (db *DB) EnrollDevice(ctx context.Context, e koshin.Enrollment, now time.Time) (*koshin.Device, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	d := *e.Device
	d.Status, d.EnrolledAt, d.LastSeenAt, d.DecommissionedAt = koshin.DeviceActive, now, time.Time{}, time.Time{}
	err := db.update(ctx, func(tx *sql.Tx) error {
		var err error
		if e.TokenHash != nil {
			err = consumeToken(ctx, tx, e.TokenHash, &d, now)
		} else {
			err = consumePreAuthorization(ctx, tx, &d, now)
		}
		if err != nil {
			return err
		}
		return insertDevice(ctx, tx, &d)
	})
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func consumeToken(ctx context.Context, tx *sql.Tx, hash []byte, d *koshin.Device, now time.Time) error {
	t, err := scanEnrollmentToken(tx.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM enrollment_tokens WHERE hash = $1`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return errEnrollRefused()
	} else if err != nil {
		return err
	}
	if !t.Usable(now) {
		return errEnrollRefused()
	}
	res, err := tx.ExecContext(ctx, `UPDATE enrollment_tokens SET used_at = $2, device_id = $3 WHERE id = $1 AND used_at IS NULL`,
		t.ID, now.UnixMicro(), d.ID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return errEnrollRefused()
	}
	d.Group, d.Tags = t.Group, t.Tags
	return nil
}

func consumePreAuthorization(ctx context.Context, tx *sql.Tx, d *koshin.Device, now time.Time) error {
	p, err := scanPreAuthorization(tx.QueryRowContext(ctx, `SELECT `+preauthColumns+` FROM preauthorizations WHERE serial = $1`, d.Serial))
	if errors.Is(err, sql.ErrNoRows) {
		return errEnrollRefused()
	} else if err != nil {
		return err
	}
	if !p.UsedAt.IsZero() || p.HardwareID != d.HardwareID || !bytes.Equal(p.PublicKey, d.PublicKey) {
		return errEnrollRefused()
	}
	res, err := tx.ExecContext(ctx, `UPDATE preauthorizations SET used_at = $2 WHERE serial = $1 AND used_at IS NULL`,
		p.Serial, now.UnixMicro())
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return errEnrollRefused()
	}
	d.Group, d.Tags = p.Group, p.Tags
	return nil
}
