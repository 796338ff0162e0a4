package postgres

import (
	"context"
	"database/sql"
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/koshin-ota/koshin"
)

// Transaction-scoped advisory locks use PostgreSQL's two-key form, whose key
// space is separate from the one-key (bigint) form of session locks, so no
// LockKey can ever collide with them.
const xactLockSpace int32 = 0x6b6f7368 // "kosh"

const (
	xactAuditChain    int32 = 1 // AppendAudit: one chain, one writer at a time
	xactOperatorRoles int32 = 2 // role changes and deletions: the last-admin rule
)

// xactLock takes a transaction-scoped advisory lock, released at commit or
// rollback. Take it first in the transaction: at READ COMMITTED every later
// statement then sees what the previous holder committed.
func xactLock(ctx context.Context, tx *sql.Tx, key int32) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, xactLockSpace, key)
	return err
}

// LockKey derives a session advisory lock key from a name such as
// "koshin/rollout-engine", so that callers share keys by name rather than by
// magic number. Keys live in the database the store is connected to.
func LockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// ErrLockLost means the session holding an advisory lock ended (the
// connection broke, the server restarted, or an administrator terminated
// it), so the lock may now be someone else's.
var ErrLockLost = errors.New("postgres: advisory lock lost")

// Lock is a session-level advisory lock held on a dedicated connection
// outside the store's pool. PostgreSQL releases it when that session ends,
// however it ends, which is what makes fail-over automatic: if the holding
// replica dies or is cut off, its session goes and another replica's
// TryLock succeeds.
//
// An advisory lock is not a fencing token: between the session's end and
// the holder noticing it (at most LockPoll plus a ping timeout later), a new
// holder may already run. Work done under the lock must therefore stay
// safe to overlap briefly, as the store's own methods are (each is one
// transaction, and the rollout engine's calls are conditional on the state
// they expect).
type Lock struct {
	key  int64
	conn *pgx.Conn
	pid  uint32

	lost      chan struct{} // closed when the session is found dead
	stop      chan struct{} // closed by Unlock
	done      chan struct{} // closed when the watcher exits
	unlockErr error
	once      sync.Once
}

// Key is the lock's key.
func (l *Lock) Key() int64 { return l.key }

// PID is the server process ID of the session holding the lock, as
// pg_locks and pg_stat_activity show it.
func (l *Lock) PID() uint32 { return l.pid }

// Lost is closed when the lock is lost (not when it is released).
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// Unlock releases the lock and closes its connection. It is safe to call
// more than once and after the lock was lost.
func (l *Lock) Unlock() error {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if !l.conn.IsClosed() {
			// Closing the session releases the lock anyway; unlocking first
			// makes the release explicit in the server log if it fails.
			_, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, l.key)
			l.unlockErr = errors.Join(err, l.conn.Close(ctx))
		}
	})
	return l.unlockErr
}

// watch pings the session every interval and closes lost when a ping
// fails or goes unanswered for pingTimeout. The timeout is generous (a busy
// server must not cost the lock) but well below the server's own dead-peer
// detection (see lockConnConfig), so a holder cut off from the database
// stops before the server hands the lock to someone else.
func (l *Lock) watch(interval time.Duration) {
	defer close(l.done)
	pingTimeout := max(2*interval, 3*time.Second)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		err := l.conn.Ping(ctx)
		cancel()
		if err != nil {
			l.conn.Close(context.Background())
			close(l.lost)
			return
		}
	}
}

// lockConnConfig is the configuration of a lock session. The TCP
// keepalives (for an idle connection) and the TCP user timeout (for one
// with unacknowledged data) make the server notice a holder that vanished
// from the network (power cut, partition) within about 20 s and end its
// session, releasing the lock; with the kernel's defaults a dead peer's
// session can outlive it by hours. The client side detects the same
// through its pings.
func (db *DB) lockConnConfig() *pgx.ConnConfig {
	c := db.sessionConfig(0, 0)
	c.RuntimeParams["application_name"] = c.RuntimeParams["application_name"] + "-lock"
	c.RuntimeParams["tcp_keepalives_idle"] = "5"
	c.RuntimeParams["tcp_keepalives_interval"] = "5"
	c.RuntimeParams["tcp_keepalives_count"] = "3"
	c.RuntimeParams["tcp_user_timeout"] = "20000"
	dialer := &net.Dialer{KeepAlive: 5 * time.Second, Timeout: 10 * time.Second}
	c.DialFunc = dialer.DialContext
	return c
}

// TryLock takes the session lock key if it is free. It returns the lock,
// or nil and no error if another session holds it.
func (db *DB) TryLock(ctx context.Context, key int64) (*Lock, error) {
	conn, err := pgx.ConnectConfig(ctx, db.lockConnConfig())
	if err != nil {
		return nil, mapError(err)
	}
	l, err := db.tryLockOn(ctx, conn, key)
	if l == nil {
		conn.Close(context.Background())
	}
	return l, err
}

// tryLockOn tries the lock on conn; on success the lock owns conn.
func (db *DB) tryLockOn(ctx context.Context, conn *pgx.Conn, key int64) (*Lock, error) {
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		return nil, mapError(err)
	}
	if !ok {
		return nil, nil
	}
	l := &Lock{key: key, conn: conn, pid: conn.PgConn().PID(),
		lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go l.watch(db.LockPoll)
	return l, nil
}

// WaitLock waits until it holds the session lock key, trying every LockPoll
// (with jitter, so waiting replicas do not try in step) on one waiting
// connection that it reconnects if it breaks. It returns ctx's error if ctx
// ends first.
func (db *DB) WaitLock(ctx context.Context, key int64) (*Lock, error) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for {
		if conn == nil || conn.IsClosed() {
			c, err := pgx.ConnectConfig(ctx, db.lockConnConfig())
			if err == nil {
				conn = c
			} else if ctx.Err() == nil {
				db.Logger.Warn("lock: cannot connect; retrying", "key", key, "err", err)
			}
		}
		if conn != nil && !conn.IsClosed() {
			l, err := db.tryLockOn(ctx, conn, key)
			if l != nil {
				conn = nil // owned by the lock now
				return l, nil
			}
			if err != nil && ctx.Err() == nil {
				db.Logger.Warn("lock: try failed; retrying", "key", key, "err", err)
				conn.Close(context.Background())
			}
		}
		t := time.NewTimer(db.LockPoll/2 + rand.N(db.LockPoll))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// RunExclusive runs fn while holding the session advisory lock key, so that
// among all replicas (all holders of a DB on the same database) at most one
// runs it at a time. It waits for the lock first (see WaitLock). fn's
// context is cancelled with cause ErrLockLost if the lock's session dies;
// RunExclusive then waits for fn to return and returns an EUNAVAILABLE
// error wrapping ErrLockLost. Otherwise it releases the lock when fn
// returns and returns fn's error.
//
// A background job typically runs it in a loop, so that a replica that
// lost the lock (or never had it) waits to take over:
//
//	for ctx.Err() == nil {
//		err := db.RunExclusive(ctx, postgres.LockKey("koshin/rollout-engine"), engine.Run)
//		…log err…
//	}
func (db *DB) RunExclusive(ctx context.Context, key int64, fn func(context.Context) error) error {
	l, err := db.WaitLock(ctx, key)
	if err != nil {
		return err
	}
	defer l.Unlock()
	db.Logger.Info("lock: acquired", "key", key, "pid", l.PID())
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-l.Lost():
			cancel(ErrLockLost)
		case <-runCtx.Done():
		}
	}()
	err = fn(runCtx)
	select {
	case <-l.Lost():
		db.Logger.Warn("lock: lost", "key", key, "pid", l.PID())
		return &koshin.Error{Code: koshin.EUNAVAILABLE, Message: "Lost the lock for background work; another replica may take over.",
			Err: errors.Join(ErrLockLost, err)}
	default:
	}
	return err
}

// LockHolder returns the server process ID of the session that holds the
// session lock key, and whether any does: for diagnostics (which replica
// runs the engine?) and tests.
func (db *DB) LockHolder(ctx context.Context, key int64) (pid int32, held bool, err error) {
	err = db.db.QueryRowContext(ctx, `SELECT pid FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 1
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND classid = (($1::bigint >> 32) & 4294967295)::oid AND objid = ($1::bigint & 4294967295)::oid`, key).Scan(&pid)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	} else if err != nil {
		return 0, false, mapError(err)
	}
	return pid, true, nil
}
