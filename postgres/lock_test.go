package postgres_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/postgres"
)

func fastLocks(db *postgres.DB) { db.LockPoll = 50 * time.Millisecond }

// TestTryLock: a held lock is refused to every other session until it is
// released; LockHolder names the holding session.
func TestTryLock(t *testing.T) {
	rs := replicas(t, 2, fastLocks)
	ctx := context.Background()
	key := postgres.LockKey("test/try")
	l, err := rs[0].TryLock(ctx, key)
	must(t, err)
	if l == nil {
		t.Fatal("free lock not taken")
	}
	if other, err := rs[1].TryLock(ctx, key); err != nil || other != nil {
		t.Fatalf("second holder: %v, %v", other, err)
	}
	if pid, held, err := rs[1].LockHolder(ctx, key); err != nil || !held || uint32(pid) != l.PID() {
		t.Fatalf("LockHolder = %d, %v, %v; want %d", pid, held, err, l.PID())
	}
	var app string
	must(t, rawDB(t, rs[1].DSN).QueryRow(`SELECT application_name FROM pg_stat_activity WHERE pid = $1`, int32(l.PID())).Scan(&app))
	if app != "koshin-lock" {
		t.Fatalf("lock session application_name = %q", app)
	}
	if other, err := rs[0].TryLock(ctx, postgres.LockKey("test/other")); err != nil || other == nil {
		t.Fatalf("another key: %v, %v", other, err)
	} else {
		must(t, other.Unlock())
	}
	must(t, l.Unlock())
	must(t, l.Unlock()) // twice is harmless
	if _, held, _ := rs[1].LockHolder(ctx, key); held {
		t.Fatal("lock still held after Unlock")
	}
	again, err := rs[1].TryLock(ctx, key)
	if err != nil || again == nil {
		t.Fatalf("released lock not taken: %v", err)
	}
	must(t, again.Unlock())
}

// TestRunExclusiveHandover: replicas contending for one key run their work
// strictly one at a time, each getting its turn.
func TestRunExclusiveHandover(t *testing.T) {
	rs := replicas(t, 3, fastLocks)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key := postgres.LockKey("test/handover")
	var running, overlaps, runs atomic.Int32
	var wg sync.WaitGroup
	for _, s := range rs {
		for range 3 {
			wg.Go(func() {
				err := s.RunExclusive(ctx, key, func(context.Context) error {
					if running.Add(1) != 1 {
						overlaps.Add(1)
					}
					time.Sleep(20 * time.Millisecond)
					running.Add(-1)
					runs.Add(1)
					return nil
				})
				if err != nil {
					t.Errorf("RunExclusive: %v", err)
				}
			})
		}
	}
	wg.Wait()
	if overlaps.Load() != 0 || runs.Load() != 9 {
		t.Fatalf("%d runs, %d overlapping; want 9 runs, none overlapping", runs.Load(), overlaps.Load())
	}
}

// TestRunExclusiveFailover: when the holder's session dies (here: an
// administrator terminates its backend, as a crashed replica's session
// would end), the holder's work is cancelled with ErrLockLost and a waiting
// replica takes over.
func TestRunExclusiveFailover(t *testing.T) {
	rs := replicas(t, 2, fastLocks)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := postgres.LockKey("koshin/rollout-engine")

	started := map[string]chan struct{}{"a": make(chan struct{}), "b": make(chan struct{})}
	causes := make(chan error, 2)
	work := func(name string) func(context.Context) error {
		return func(ctx context.Context) error {
			close(started[name])
			<-ctx.Done()
			causes <- context.Cause(ctx)
			return ctx.Err()
		}
	}
	errA, errB := make(chan error, 1), make(chan error, 1)
	go func() { errA <- rs[0].RunExclusive(ctx, key, work("a")) }()
	waitFor(t, started["a"], "replica a to take the lock")
	go func() { errB <- rs[1].RunExclusive(ctx, key, work("b")) }()

	select {
	case <-started["b"]:
		t.Fatal("replica b ran while a held the lock")
	case <-time.After(10 * 50 * time.Millisecond): // ten of b's polls
	}
	pid, held, err := rs[1].LockHolder(ctx, key)
	must(t, err)
	if !held {
		t.Fatal("nobody holds the lock")
	}
	var terminated bool
	must(t, rawDB(t, rs[1].DSN).QueryRow(`SELECT pg_terminate_backend($1)`, pid).Scan(&terminated))
	if !terminated {
		t.Fatalf("could not terminate backend %d", pid)
	}

	waitFor(t, started["b"], "replica b to take over")
	select {
	case err := <-errA:
		if !errors.Is(err, postgres.ErrLockLost) || koshin.ErrorCode(err) != koshin.EUNAVAILABLE {
			t.Fatalf("a's RunExclusive = %v, want EUNAVAILABLE wrapping ErrLockLost", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a's RunExclusive did not return after losing the lock")
	}
	if cause := <-causes; !errors.Is(cause, postgres.ErrLockLost) {
		t.Fatalf("a's work was cancelled with cause %v, want ErrLockLost", cause)
	}
	newPID, held, err := rs[0].LockHolder(ctx, key)
	must(t, err)
	if !held || newPID == pid {
		t.Fatalf("holder after fail-over = %d (held %v), was %d", newPID, held, pid)
	}
	cancel()
	if err := <-errB; !errors.Is(err, context.Canceled) {
		t.Fatalf("b's RunExclusive = %v, want context.Canceled", err)
	}
}

// TestWaitLockCancelled: a replica waiting for a held lock stops waiting
// when its context ends.
func TestWaitLockCancelled(t *testing.T) {
	rs := replicas(t, 2, fastLocks)
	key := postgres.LockKey("test/wait")
	l, err := rs[0].TryLock(context.Background(), key)
	must(t, err)
	defer l.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if got, err := rs[1].WaitLock(ctx, key); got != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitLock = %v, %v; want DeadlineExceeded", got, err)
	}
}

func waitFor(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}
