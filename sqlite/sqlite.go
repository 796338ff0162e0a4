// Package sqlite implements koshin.Store on an embedded SQLite database
// (modernc.org/sqlite: pure Go, no cgo), the single-node default: one file in
// the server's data directory, nothing else to run.
//
// Writes go through one connection. SQLite allows one writer at a time
// anyway; with a single Go-side connection, concurrent requests queue in
// database/sql instead of spinning on SQLITE_BUSY, and every write
// transaction begins IMMEDIATE so it never has to upgrade a read lock (the
// classic cause of deadlock-style BUSY errors). Reads use a separate pool of
// query-only connections that, thanks to WAL, never wait for the writer.
//
// Queries use $1…$N placeholders and portable SQL so that the PostgreSQL
// store can share their text; schema differences live in each package's
// own migrations directory (goose, embedded).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/koshin-ota/koshin"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is the SQLite store. Create it with NewDB, set fields, then Open.
type DB struct {
	// Path is the database file; "-wal" and "-shm" files appear next to it.
	Path string
	// Now is the clock for record-keeping timestamps.
	Now func() time.Time
	// BusyTimeout is how long a statement waits for another process's
	// write lock (e.g. the CLI while the server runs).
	BusyTimeout time.Duration

	write *sql.DB
	read  *sql.DB
	hot   hotStatements
}

// hotStatements are the check-in path's statements, prepared once: with
// SQLite, parsing and planning a short query costs more than running it.
type hotStatements struct {
	findDevice, findActive, touch *sql.Stmt
}

var _ koshin.Store = (*DB)(nil)

// NewDB returns a DB for the file at path with the system clock.
func NewDB(path string) *DB {
	return &DB{Path: path, Now: time.Now, BusyTimeout: 5 * time.Second}
}

// Open opens both connection pools and applies pending migrations.
func (db *DB) Open(ctx context.Context) (err error) {
	if db.Path == "" {
		return koshin.Errorf(koshin.EINVALID, "Database path is required.")
	}
	if db.write, err = sql.Open("sqlite", db.dsn(false)); err != nil {
		return fmt.Errorf("open sqlite: %w", err)
	}
	// One writer: see the package comment.
	db.write.SetMaxOpenConns(1)
	db.write.SetConnMaxIdleTime(0)
	if err := db.migrate(ctx); err != nil {
		db.write.Close()
		return err
	}
	if db.read, err = sql.Open("sqlite", db.dsn(true)); err != nil {
		db.write.Close()
		return fmt.Errorf("open sqlite: %w", err)
	}
	db.read.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	db.read.SetMaxIdleConns(max(4, runtime.GOMAXPROCS(0)))
	if err := db.prepare(ctx); err != nil {
		db.Close()
		return err
	}
	return nil
}

func (db *DB) prepare(ctx context.Context) (err error) {
	prep := func(pool *sql.DB, query string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = pool.PrepareContext(ctx, query)
		return st
	}
	db.hot.findDevice = prep(db.read, findDeviceQuery)
	db.hot.findActive = prep(db.read, findActiveQuery)
	db.hot.touch = prep(db.write, touchQuery)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	return nil
}

// dsn builds the connection string. The pragmas and why:
//   - journal_mode=WAL: readers never block the writer or each other, and
//     a commit appends to the log instead of rewriting pages.
//   - synchronous=NORMAL: in WAL mode a commit is not fsynced, only
//     checkpoints are. A power cut can lose the last few transactions but
//     never corrupts the database, and every transaction stays atomic.
//     Devices retry unacknowledged reports and events (which are
//     idempotent), so losing the tail costs a retry, while FULL would cost
//     an fsync per check-in.
//   - foreign_keys=ON: SQLite leaves them off by default.
//   - busy_timeout: wait for another process's lock instead of failing.
//   - _txlock=immediate: write transactions take the write lock at BEGIN.
//   - query_only on the read pool: a read path can never write by mistake.
func (db *DB) dsn(readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", db.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return "file:" + db.Path + "?" + q.Encode()
}

func (db *DB) migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db.write, sub)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	return nil
}

// Close closes both pools.
func (db *DB) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{db.hot.findDevice, db.hot.findActive, db.hot.touch} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if db.read != nil {
		errs = append(errs, db.read.Close())
	}
	if db.write != nil {
		errs = append(errs, db.write.Close())
	}
	return errors.Join(errs...)
}

// now is the store clock, truncated to the precision stored.
func (db *DB) now() time.Time { return db.Now().UTC().Truncate(time.Microsecond) }

// update runs fn in one write transaction and maps its error.
func (db *DB) update(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return mapError(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return mapError(err)
	}
	return mapError(tx.Commit())
}

// mapError turns driver errors into domain errors: constraint violations
// are conflicts, lock timeouts mean "try again", anything else is internal.
func mapError(err error) error {
	var ke *koshin.Error
	var se *sqlite.Error
	switch {
	case err == nil || errors.As(err, &ke):
		return err
	case errors.As(err, &se):
		return mapSQLiteError(se)
	}
	return koshin.Internal(err)
}

func mapSQLiteError(se *sqlite.Error) error {
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return &koshin.Error{Code: koshin.ECONFLICT, Message: "Already exists.", Err: se}
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return &koshin.Error{Code: koshin.ECONFLICT, Message: "Refers to something that does not exist.", Err: se}
	case sqlite3.SQLITE_CONSTRAINT_TRIGGER:
		return &koshin.Error{Code: koshin.EFORBIDDEN, Message: "History is append-only.", Err: se}
	case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL:
		return &koshin.Error{Code: koshin.EINVALID, Message: "Invalid value.", Err: se}
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return &koshin.Error{Code: koshin.EUNAVAILABLE, Message: "The database is busy; try again.", Err: se}
	}
	return koshin.Internal(se)
}

// notFound is the ENOTFOUND error for what, or err mapped if it is not
// sql.ErrNoRows.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return koshin.Errorf(koshin.ENOTFOUND, format, args...)
	}
	return mapError(err)
}
