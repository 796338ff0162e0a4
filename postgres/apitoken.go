package postgres

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/koshin-ota/koshin"
)

const apiTokenColumns = `id, operator, name, role, hash, created_at, expires_at`

func scanAPIToken(s scanner) (*koshin.APIToken, error) {
	var t koshin.APIToken
	var created, expires sql.NullInt64
	if err := s.Scan(&t.ID, &t.Operator, &t.Name, &t.Role, &t.Hash, &created, &expires); err != nil {
		return nil, err
	}
	t.CreatedAt, t.ExpiresAt = timeOf(created), timeOf(expires)
	return &t, nil
}

// CreateAPIToken implements koshin.OperatorStore.
func (db *DB) CreateAPIToken(ctx context.Context, t *koshin.APIToken) error {
	if err := t.Validate(); err != nil {
		return err
	}
	now := db.now()
	if err := t.ValidateLifetime(now); err != nil {
		return err
	}
	t.CreatedAt, t.ExpiresAt = now, utcMicro(t.ExpiresAt)
	return db.update(ctx, func(tx *sql.Tx) error {
		// Locking the owner's row serialises token creation per operator,
		// so concurrent requests cannot pass the count check together, and
		// orders it against role changes.
		o, err := scanOperator(tx.QueryRowContext(ctx, `SELECT `+operatorColumns+` FROM operators WHERE name = $1 FOR NO KEY UPDATE`, t.Operator))
		if err != nil {
			return notFound(err, "Operator %s not found.", t.Operator)
		}
		if !o.Role.Covers(t.Role) {
			return koshin.Errorf(koshin.EFORBIDDEN, "A %s cannot create a %s token.", o.Role, t.Role)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_tokens WHERE operator = $1`, t.Operator).Scan(&n); err != nil {
			return err
		}
		if n >= koshin.MaxAPITokensPerOperator {
			return koshin.Errorf(koshin.ETOOMANY, "An operator can hold at most %d tokens.", koshin.MaxAPITokensPerOperator)
		}
		return tx.QueryRowContext(ctx, `INSERT INTO api_tokens (operator, name, role, hash, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			t.Operator, t.Name, t.Role, t.Hash, now.UnixMicro(), t.ExpiresAt.UnixMicro()).Scan(&t.ID)
	})
}

// FindAPITokenByHash implements koshin.OperatorStore. Every refusal is
// the same EUNAUTHORIZED so a caller learns nothing about which tokens
// exist.
func (db *DB) FindAPITokenByHash(ctx context.Context, hash []byte, now time.Time) (*koshin.APIToken, error) {
	refused := koshin.Errorf(koshin.EUNAUTHORIZED, "Invalid or expired token.")
	if len(hash) != 32 {
		return nil, refused
	}
	var role koshin.Role
	t, err := scanAPIToken(db.db.QueryRowContext(ctx, `SELECT t.id, t.operator, t.name, t.role, t.hash, t.created_at,
		t.expires_at FROM api_tokens t WHERE t.hash = $1`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, refused
	} else if err != nil {
		return nil, mapError(err)
	}
	if err := db.db.QueryRowContext(ctx, `SELECT role FROM operators WHERE name = $1`, t.Operator).Scan(&role); err != nil {
		return nil, notFoundAs(err, refused)
	}
	if t.Expired(now) || !role.Covers(t.Role) {
		return nil, refused
	}
	return t, nil
}

// notFoundAs returns alt for sql.ErrNoRows and the mapped error otherwise.
func notFoundAs(err error, alt error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return alt
	}
	return mapError(err)
}

// FindAPITokens implements koshin.OperatorStore.
func (db *DB) FindAPITokens(ctx context.Context, operator string) ([]*koshin.APIToken, error) {
	if err := koshin.ValidateID("Operator name", operator); err != nil {
		return nil, err
	}
	if _, err := findOperator(ctx, db.db, operator); err != nil {
		return nil, err
	}
	rows, err := db.db.QueryContext(ctx, `SELECT `+apiTokenColumns+` FROM api_tokens WHERE operator = $1 ORDER BY id LIMIT $2`,
		operator, koshin.MaxAPITokensPerOperator)
	if err != nil {
		return nil, mapError(err)
	}
	return collect(rows, scanAPIToken)
}

// DeleteAPIToken implements koshin.OperatorStore.
func (db *DB) DeleteAPIToken(ctx context.Context, id int64) error {
	return db.deleteOne(ctx, `DELETE FROM api_tokens WHERE id = $1`, id, "API token")
}
