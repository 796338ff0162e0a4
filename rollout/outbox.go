package rollout

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"time"
)

// Outbox defaults.
const (
	DefaultMaxPending  = 10_000
	DefaultMaxAttempts = 12
	DefaultBackoff     = 30 * time.Second
	DefaultMaxBackoff  = time.Hour
)

// Outbox is a Notifier that queues notifications in memory and delivers
// them to another Notifier from Run (or Flush), retrying failures with
// exponential backoff. Notify never blocks, so a slow or unreachable
// receiver cannot hold up a tick or a device's request; a failure is logged
// and retried later (CCDS UPD10).
//
// The queue is bounded: when full, the oldest notification is dropped and
// logged, because a receiver that has been down long enough to fill it
// is better served by the newest state. The queue lives in memory, so a
// restart loses what was not delivered; the facts themselves stay in the
// audit log and the event history.
type Outbox struct {
	Notifier    Notifier
	Now         func() time.Time
	Log         *slog.Logger
	MaxPending  int           // 0 means DefaultMaxPending
	MaxAttempts int           // 0 means DefaultMaxAttempts
	Backoff     time.Duration // first retry delay, doubled per attempt; 0 means DefaultBackoff
	MaxBackoff  time.Duration // 0 means DefaultMaxBackoff

	mu      sync.Mutex
	pending []*queued
}

type queued struct {
	n        Notification
	attempts int
	due      time.Time
}

// Notify queues n for delivery; it never fails.
func (o *Outbox) Notify(_ context.Context, n Notification) error {
	o.push(&queued{n: n, due: o.Now()})
	return nil
}

// Len is the number of notifications waiting.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.pending)
}

func (o *Outbox) push(qs ...*queued) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pending = append(o.pending, qs...)
	limit := cmp.Or(o.MaxPending, DefaultMaxPending)
	for len(o.pending) > limit {
		o.logger().Error("notification dropped: outbox full", "id", o.pending[0].n.ID, "kind", o.pending[0].n.Kind)
		o.pending = o.pending[1:]
	}
}

// takeDue removes and returns the notifications due at now, oldest first.
// Taking them out of the queue means concurrent Flush calls never deliver
// one twice.
func (o *Outbox) takeDue(now time.Time) []*queued {
	o.mu.Lock()
	defer o.mu.Unlock()
	var due, rest []*queued
	for _, q := range o.pending {
		if now.Before(q.due) {
			rest = append(rest, q)
		} else {
			due = append(due, q)
		}
	}
	o.pending = rest
	return due
}

// Flush tries every due notification once and returns how many were
// delivered. Failures are rescheduled, or dropped after MaxAttempts.
func (o *Outbox) Flush(ctx context.Context) int {
	now := o.Now()
	due := o.takeDue(now)
	delivered := 0
	for i, q := range due {
		if ctx.Err() != nil {
			o.push(due[i:]...)
			break
		}
		if err := o.Notifier.Notify(ctx, q.n); err != nil {
			o.retry(q, now, err)
			continue
		}
		delivered++
	}
	return delivered
}

func (o *Outbox) retry(q *queued, now time.Time, err error) {
	q.attempts++
	log := o.logger().With("id", q.n.ID, "kind", q.n.Kind, "attempt", q.attempts, "err", err)
	if q.attempts >= cmp.Or(o.MaxAttempts, DefaultMaxAttempts) {
		log.Error("notification dropped: delivery keeps failing")
		return
	}
	q.due = now.Add(o.backoff(q.attempts))
	log.Warn("notification delivery failed; will retry", "at", q.due)
	o.push(q)
}

// backoff is the delay before retry number attempt (≥ 1).
func (o *Outbox) backoff(attempt int) time.Duration {
	d := cmp.Or(o.Backoff, DefaultBackoff)
	limit := cmp.Or(o.MaxBackoff, DefaultMaxBackoff)
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// Run flushes every interval until ctx ends, then returns ctx's error.
func (o *Outbox) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		o.Flush(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (o *Outbox) logger() *slog.Logger {
	if o.Log == nil {
		return slog.Default()
	}
	return o.Log
}
