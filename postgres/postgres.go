// Package postgres implements koshin.Store on PostgreSQL (pgx v5), the
// scale-out store: any number of stateless `koshin server` replicas share
// one database, and every store method is one transaction whose outcome is
// the same however the replicas' calls interleave.
//
// # Why database/sql
//
// The store talks to PostgreSQL through database/sql with pgx's stdlib
// driver, not through pgxpool directly. The wire protocol, binary
// encoding and per-connection statement cache are pgx's either way; what
// database/sql adds is that goose (migrations) needs a *sql.DB, and that the
// query text and row scanning are the SQLite store's, nearly line for line,
// so the two dialect packages stay easy to compare. The one place that needs
// a connection of its own, the session-level advisory lock behind
// RunExclusive, uses a dedicated pgx.Conn outside the pool (see lock.go).
//
// # Concurrency
//
// Transactions run at READ COMMITTED with explicit row locks where a method
// reads before it writes (SELECT … FOR UPDATE / FOR NO KEY UPDATE / FOR
// SHARE), so concurrent replicas queue on the rows they share and every
// statement after the lock sees the winner's commit. Constraints are the
// final word: the partial unique index assignments_one_active makes a second
// active assignment for a device impossible whatever the application does,
// and AssignNext inserts with ON CONFLICT DO NOTHING against it. Batches
// of rows are locked in a fixed order (device ID), so two replicas'
// batches do not deadlock; a deadlock PostgreSQL detects anyway is
// retried (below). The audit chain is appended under a transaction-scoped
// advisory lock, so it stays linear with any number of writers.
//
// A transaction that PostgreSQL aborts for a reason that says nothing about
// the request (serialization failure, deadlock, lock timeout) is retried a
// bounded number of times with jittered backoff; if it keeps failing the
// caller gets EUNAVAILABLE (HTTP 503). Unique and foreign key violations
// are ECONFLICT, check violations and malformed text (NUL bytes, invalid
// UTF-8) EINVALID, and the append-only triggers EFORBIDDEN.
//
// Event and device-report sequence numbers come from sequences, so on
// PostgreSQL they are unique and increasing per insert but may become
// visible out of order when two transactions commit in the opposite order
// from their inserts. A consumer that tails events by cursor should re-read
// a short overlap; the audit log does not have this property because its
// sequence is assigned under the chain lock.
//
// Schema changes live in migrations/ (goose, embedded, PostgreSQL dialect),
// applied by Open under a session advisory lock so replicas that start
// together migrate once. The rules that keep migrations from taking long
// locks are in migrations/README.md and are checked by TestMigrationRules.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/koshin-ota/koshin"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is the PostgreSQL store. Create it with NewDB, set fields, then Open.
type DB struct {
	// DSN is a libpq-style URL or keyword/value string; parameters pgx
	// understands apply (e.g. default_query_exec_mode=exec behind a pooler
	// that cannot keep prepared statements), others are sent to the server
	// as session settings.
	DSN string
	// Now is the clock for record-keeping timestamps.
	Now func() time.Time
	// Logger receives migration progress and lock hand-overs.
	Logger *slog.Logger

	// MaxConns bounds this replica's connections; the sum over replicas
	// (plus one per held or awaited advisory lock) must stay below the
	// server's max_connections.
	MaxConns int
	// LockTimeout bounds how long one statement waits for a row or table
	// lock. A wait that long means contention or a DDL queued ahead; the
	// transaction is retried and, if it keeps timing out, the caller gets
	// EUNAVAILABLE instead of a request that hangs.
	LockTimeout time.Duration
	// StatementTimeout bounds one statement's run time (0: server default).
	StatementTimeout time.Duration
	// MaxAttempts is how often a transaction is tried when PostgreSQL
	// aborts it for a serialization failure, deadlock or lock timeout.
	MaxAttempts int
	// MigrationLockTimeout bounds each migration statement's wait for its
	// lock, so that a migration queued behind a long query gives up (and is
	// retried) instead of blocking every query queued behind it.
	MigrationLockTimeout time.Duration
	// LockPoll is how often RunExclusive tries to take a free lock and
	// checks that a held one's session is alive; it bounds fail-over time.
	LockPoll time.Duration

	cfg *pgx.ConnConfig
	db  *sql.DB
}

var _ koshin.Store = (*DB)(nil)

// NewDB returns a DB for dsn with the system clock and production defaults.
func NewDB(dsn string) *DB {
	return &DB{
		DSN: dsn, Now: time.Now, Logger: slog.New(slog.DiscardHandler),
		MaxConns: 20, LockTimeout: 2 * time.Second, StatementTimeout: time.Minute, MaxAttempts: 5,
		MigrationLockTimeout: 5 * time.Second, LockPoll: time.Second,
	}
}

// Open connects, applies pending migrations and checks the connection.
func (db *DB) Open(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return db.open(ctx, sub)
}

func (db *DB) open(ctx context.Context, fsys fs.FS) error {
	if db.DSN == "" {
		return koshin.Errorf(koshin.EINVALID, "PostgreSQL DSN is required.")
	}
	cfg, err := pgx.ParseConfig(db.DSN)
	if err != nil {
		// The parse error may echo the password; keep it out of the message.
		return koshin.Errorf(koshin.EINVALID, "PostgreSQL DSN is not valid.")
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "koshin"
	}
	db.cfg = cfg
	if err := db.migrate(ctx, fsys); err != nil {
		return err
	}
	db.db = stdlib.OpenDB(*db.sessionConfig(db.LockTimeout, db.StatementTimeout))
	db.db.SetMaxOpenConns(db.MaxConns)
	db.db.SetMaxIdleConns(db.MaxConns)
	// Recycle connections so that a fail-over to a new primary behind the
	// same name, or a rebalanced pooler, is picked up without a restart.
	db.db.SetConnMaxLifetime(30 * time.Minute)
	db.db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.db.PingContext(ctx); err != nil {
		db.db.Close()
		return fmt.Errorf("connect postgres: %w", mapError(err))
	}
	return nil
}

// sessionConfig is the connection config with per-session limits set.
// idle_in_transaction_session_timeout ends a session that a bug left inside
// a transaction, so it cannot hold row locks for ever.
func (db *DB) sessionConfig(lockTimeout, statementTimeout time.Duration) *pgx.ConnConfig {
	c := db.cfg.Copy()
	c.RuntimeParams["lock_timeout"] = strconv.FormatInt(lockTimeout.Milliseconds(), 10)
	c.RuntimeParams["statement_timeout"] = strconv.FormatInt(statementTimeout.Milliseconds(), 10)
	c.RuntimeParams["idle_in_transaction_session_timeout"] = "60000"
	return c
}

// Close closes the connection pool.
func (db *DB) Close() error {
	if db.db == nil {
		return nil
	}
	return db.db.Close()
}

// now is the store clock, truncated to the precision stored.
func (db *DB) now() time.Time { return db.Now().UTC().Truncate(time.Microsecond) }

// migrationLockKey serialises migrations of replicas that start together.
var migrationLockKey = LockKey("koshin/migrate")

// migrate applies pending migrations on a short-lived pool whose sessions
// give up on a lock after MigrationLockTimeout, retrying the run a few
// times: each migration is its own transaction, so a retry resumes where
// the last attempt stopped.
func (db *DB) migrate(ctx context.Context, fsys fs.FS) error {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockKey), lock.WithLockTimeout(1, 600))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	mdb := stdlib.OpenDB(*db.sessionConfig(db.MigrationLockTimeout, 0))
	defer mdb.Close()
	mdb.SetMaxOpenConns(2) // goose holds one connection for its lock
	p, err := goose.NewProvider(goose.DialectPostgres, mdb, fsys, goose.WithSessionLocker(locker), goose.WithSlog(db.Logger))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return retry(ctx, db.MaxAttempts, func() error {
		_, err := p.Up(ctx)
		if err != nil && retryable(err) {
			db.Logger.Warn("migration waited too long for a lock; retrying", "err", err)
		}
		return err
	}, func(err error) error {
		if err != nil {
			return fmt.Errorf("migrate postgres: %w", mapError(err))
		}
		return nil
	})
}

// txRunner is the part of *sql.Tx store helpers use.
type txRunner interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// update runs fn in one READ COMMITTED transaction, retrying it when
// PostgreSQL aborts it for contention (see retryable). fn may run more than
// once, so it must set, not accumulate, whatever it reports back.
func (db *DB) update(ctx context.Context, fn func(*sql.Tx) error) error {
	return retry(ctx, db.MaxAttempts, func() error {
		tx, err := db.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	}, mapError)
}

// exec runs one statement outside an explicit transaction, with the same
// retries as update.
func (db *DB) exec(ctx context.Context, query string, args ...any) (n int64, err error) {
	err = retry(ctx, db.MaxAttempts, func() error {
		res, err := db.db.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	}, mapError)
	return n, err
}

// notFound is the ENOTFOUND error for what, or err mapped if it is not
// sql.ErrNoRows.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return koshin.Errorf(koshin.ENOTFOUND, format, args...)
	}
	return mapError(err)
}
