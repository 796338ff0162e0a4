package postgres

import (
	"context"
	"database/sql"
	"time"

	"github.com/koshin-ota/koshin"
)

const operatorColumns = `name, role, password_hash, totp_secret, failed_logins, locked_until, last_login_at, created_at, updated_at,
	totp_last_step, totp_pending, totp_pending_until`

func scanOperator(s scanner) (*koshin.Operator, error) {
	var o koshin.Operator
	var locked, last, created, updated, pendingUntil sql.NullInt64
	if err := s.Scan(&o.Name, &o.Role, &o.PasswordHash, &o.TOTPSecret, &o.FailedLogins, &locked, &last, &created, &updated,
		&o.TOTPLastStep, &o.TOTPPending, &pendingUntil); err != nil {
		return nil, err
	}
	o.LockedUntil, o.LastLoginAt, o.CreatedAt, o.UpdatedAt = timeOf(locked), timeOf(last), timeOf(created), timeOf(updated)
	o.TOTPPendingUntil = timeOf(pendingUntil)
	return &o, nil
}

// CreateOperator implements koshin.OperatorStore.
func (db *DB) CreateOperator(ctx context.Context, o *koshin.Operator) error {
	if err := o.Validate(); err != nil {
		return err
	}
	now := db.now()
	o.CreatedAt, o.UpdatedAt, o.FailedLogins, o.LockedUntil, o.LastLoginAt = now, now, 0, time.Time{}, time.Time{}
	return db.update(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM operators WHERE name = $1`, o.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return koshin.Errorf(koshin.ECONFLICT, "Operator %s exists already.", o.Name)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO operators (name, role, password_hash, totp_secret, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5)`, o.Name, o.Role, o.PasswordHash, nilIfEmpty(o.TOTPSecret), now.UnixMicro())
		return err
	})
}

// FindOperatorByName implements koshin.OperatorStore.
func (db *DB) FindOperatorByName(ctx context.Context, name string) (*koshin.Operator, error) {
	if err := koshin.ValidateID("Operator name", name); err != nil {
		return nil, err
	}
	return findOperator(ctx, db.db, name)
}

func findOperator(ctx context.Context, q queryer, name string) (*koshin.Operator, error) {
	o, err := scanOperator(q.QueryRowContext(ctx, `SELECT `+operatorColumns+` FROM operators WHERE name = $1`, name))
	if err != nil {
		return nil, notFound(err, "Operator %s not found.", name)
	}
	return o, nil
}

// FindOperators implements koshin.OperatorStore.
func (db *DB) FindOperators(ctx context.Context, f koshin.OperatorFilter) ([]*koshin.Operator, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	limit, _ := koshin.Limit(f.Limit)
	var q query
	if f.Role != "" {
		q.where("role = " + q.arg(string(f.Role)))
	}
	if f.After != "" {
		q.where("name > " + q.arg(f.After))
	}
	rows, err := db.db.QueryContext(ctx, `SELECT `+operatorColumns+` FROM operators`+q.clause()+
		` ORDER BY name LIMIT `+q.arg(limit), q.args...)
	if err != nil {
		return nil, mapError(err)
	}
	return collect(rows, scanOperator)
}

// UpdateOperator implements koshin.OperatorStore.
func (db *DB) UpdateOperator(ctx context.Context, name string, upd koshin.OperatorUpdate) (*koshin.Operator, error) {
	if err := koshin.ValidateID("Operator name", name); err != nil {
		return nil, err
	}
	var o *koshin.Operator
	err := db.update(ctx, func(tx *sql.Tx) (err error) {
		if err := xactLock(ctx, tx, xactOperatorRoles); err != nil {
			return err
		}
		if o, err = findOperator(ctx, tx, name); err != nil {
			return err
		}
		wasAdmin := o.Role == koshin.RoleAdmin
		if err := upd.Apply(o); err != nil {
			return err
		}
		if wasAdmin && o.Role != koshin.RoleAdmin {
			if err := requireOtherAdmin(ctx, tx, name); err != nil {
				return err
			}
		}
		o.UpdatedAt = db.now()
		_, err = tx.ExecContext(ctx, `UPDATE operators SET role = $2, password_hash = $3, totp_secret = $4, updated_at = $5
			WHERE name = $1`, name, o.Role, o.PasswordHash, nilIfEmpty(o.TOTPSecret), o.UpdatedAt.UnixMicro())
		if err != nil || upd.TOTPSecret == nil {
			return err
		}
		o.TOTPPending, o.TOTPPendingUntil = nil, time.Time{}
		_, err = tx.ExecContext(ctx, `UPDATE operators SET totp_pending = NULL, totp_pending_until = NULL WHERE name = $1`, name)
		return err
	})
	return o, err
}

// requireOtherAdmin refuses to remove the last administrator: with no
// default account, losing it would lock everyone out of the server. The
// caller holds the xactOperatorRoles lock, so two administrators demoting
// each other on two replicas cannot both see the other as the survivor.
func requireOtherAdmin(ctx context.Context, tx *sql.Tx, name string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM operators WHERE role = 'admin' AND name <> $1`, name).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return koshin.Errorf(koshin.ECONFLICT, "%s is the last administrator.", name)
	}
	return nil
}

// DeleteOperator implements koshin.OperatorStore.
func (db *DB) DeleteOperator(ctx context.Context, name string) error {
	if err := koshin.ValidateID("Operator name", name); err != nil {
		return err
	}
	return db.update(ctx, func(tx *sql.Tx) error {
		if err := xactLock(ctx, tx, xactOperatorRoles); err != nil {
			return err
		}
		o, err := findOperator(ctx, tx, name)
		if err != nil {
			return err
		}
		if o.Role == koshin.RoleAdmin {
			if err := requireOtherAdmin(ctx, tx, name); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE operator = $1`, name); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM operators WHERE name = $1`, name)
		return err
	})
}

// RecordLoginFailure implements koshin.OperatorStore. The count is
// incremented in SQL, not read-modify-written, so concurrent guesses on
// several replicas all count.
func (db *DB) RecordLoginFailure(ctx context.Context, name string, policy koshin.LockoutPolicy, now time.Time) (*koshin.Operator, error) {
	if err := koshin.ValidateID("Operator name", name); err != nil {
		return nil, err
	}
	if err := policy.Validate(); err != nil {
		return nil, err
	}
	var o *koshin.Operator
	err := db.update(ctx, func(tx *sql.Tx) error {
		var failures int
		err := tx.QueryRowContext(ctx, `UPDATE operators SET failed_logins = failed_logins + 1 WHERE name = $1
			RETURNING failed_logins`, name).Scan(&failures)
		if err != nil {
			return notFound(err, "Operator %s not found.", name)
		}
		if d := policy.Delay(failures); d > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE operators SET locked_until = $2 WHERE name = $1`,
				name, now.Add(d).UnixMicro()); err != nil {
				return err
			}
		}
		o, err = findOperator(ctx, tx, name)
		return err
	})
	return o, err
}

// RecordLoginSuccess implements koshin.OperatorStore.
func (db *DB) RecordLoginSuccess(ctx context.Context, name string, now time.Time) (*koshin.Operator, error) {
	if err := koshin.ValidateID("Operator name", name); err != nil {
		return nil, err
	}
	var o *koshin.Operator
	err := db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE operators SET failed_logins = 0, locked_until = NULL, last_login_at = $2
			WHERE name = $1`, name, now.UnixMicro())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return koshin.Errorf(koshin.ENOTFOUND, "Operator %s not found.", name)
		}
		o, err = findOperator(ctx, tx, name)
		return err
	})
	return o, err
}

// UseTOTPStep implements koshin.OperatorStore. The step is compared and
// set in one conditional UPDATE, so of two replicas accepting the same code
// at once exactly one succeeds.
func (db *DB) UseTOTPStep(ctx context.Context, name string, step int64) error {
	if err := koshin.ValidateID("Operator name", name); err != nil {
		return err
	}
	if step < 0 {
		return koshin.Errorf(koshin.EINVALID, "TOTP step must not be negative.")
	}
	return db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE operators SET totp_last_step = $2 WHERE name = $1 AND totp_last_step < $2`, name, step)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		if _, err := findOperator(ctx, tx, name); err != nil {
			return err
		}
		return koshin.Errorf(koshin.ECONFLICT, "This one-time code was used already.")
	})
}

// OfferTOTP implements koshin.OperatorStore.
func (db *DB) OfferTOTP(ctx context.Context, name string, secret []byte, expires time.Time) error {
	if err := koshin.ValidateID("Operator name", name); err != nil {
		return err
	}
	if err := koshin.ValidateTOTPSecret(secret); err != nil {
		return err
	}
	return db.update(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE operators SET totp_pending = $2, totp_pending_until = $3 WHERE name = $1`,
			name, secret, expires.UnixMicro())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return koshin.Errorf(koshin.ENOTFOUND, "Operator %s not found.", name)
		}
		return nil
	})
}
