package main

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/koshin-ota/koshin/postgres"
)

// exclusive runs a background job (the rollout engine: its ticks, the
// device-silence deadlines, phase advances and assignments) on one replica
// at a time. With PostgreSQL every replica calls it and waits for the job's
// session advisory lock; the holder runs the job until it stops or loses
// the lock, and when the holder dies PostgreSQL ends its session and
// another replica takes over within about a lock poll
// (postgres.DB.RunExclusive, docs/scale-out.md). With SQLite there is one
// server, which just runs the job.
//
// job returns when ctx ends. exclusive returns when ctx ends.
func (m *ServerMain) exclusive(ctx context.Context, name string, job func(context.Context) error) {
	db, ok := m.Store.(*postgres.DB)
	if !ok {
		m.runJob(ctx, name, job)
		return
	}
	key := postgres.LockKey("koshin/" + name)
	for ctx.Err() == nil {
		err := db.RunExclusive(ctx, key, func(ctx context.Context) error { return m.runJob(ctx, name, job) })
		if ctx.Err() != nil {
			return
		}
		m.Log.Warn("background job stopped on this replica; waiting to take it over again", "job", name, "err", err)
		// A job that fails at once must not spin on the lock.
		t := time.NewTimer(time.Second + rand.N(time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (m *ServerMain) runJob(ctx context.Context, name string, job func(context.Context) error) error {
	m.Log.Info("background job running on this replica", "job", name)
	return job(ctx)
}
