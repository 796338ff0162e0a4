package postgres

import (
	"context"
	"io/fs"
)

// OpenWithMigrations opens db with migrations from fsys instead of the
// embedded ones, so tests can run a migration that does not exist yet.
func (db *DB) OpenWithMigrations(ctx context.Context, fsys fs.FS) error { return db.open(ctx, fsys) }

// Migrations is the embedded migrations directory.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err)
	}
	return sub
}
