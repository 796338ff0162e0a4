package sqlite

import (
	"context"
	"database/sql"

	"github.com/koshin-ota/koshin"
)

// ClaimSetting implements koshin.SettingStore. The insert does nothing if
// the name exists, so of concurrent claims the first to commit wins and
// every caller then reads the winner's value.
func (db *DB) ClaimSetting(ctx context.Context, name, value string) (string, error) {
	if err := koshin.ValidateSetting(name, value); err != nil {
		return "", err
	}
	var stored string
	err := db.update(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO NOTHING`, name, value, db.now().UnixMicro()); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = $1`, name).Scan(&stored)
	})
	return stored, err
}
