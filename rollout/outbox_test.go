package rollout_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/rollout"
)

// flaky fails its first failures deliveries of each notification.
type flaky struct {
	mu        sync.Mutex
	failures  int
	attempts  map[string]int
	delivered []string
}

func (f *flaky) Notify(_ context.Context, n rollout.Notification) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.attempts == nil {
		f.attempts = map[string]int{}
	}
	f.attempts[n.ID]++
	if f.attempts[n.ID] <= f.failures {
		return errors.New("receiver down")
	}
	f.delivered = append(f.delivered, n.ID)
	return nil
}

func newOutbox(sink rollout.Notifier, c *clock) *rollout.Outbox {
	return &rollout.Outbox{Notifier: sink, Now: c.Now, Log: quiet, Backoff: time.Minute, MaxBackoff: 4 * time.Minute, MaxAttempts: 4}
}

// TestOutboxRetriesWithBackoff: a failed delivery is retried after 1, 2,
// then 4 minutes, not earlier, and delivered once it succeeds.
func TestOutboxRetriesWithBackoff(t *testing.T) {
	c := &clock{t: t0}
	sink := &flaky{failures: 3}
	o := newOutbox(sink, c)
	o.Notify(t.Context(), rollout.Notification{ID: "n1", Kind: rollout.KindFailed})
	for i, wait := range []time.Duration{0, time.Minute, 2 * time.Minute} {
		c.Advance(wait)
		if n := o.Flush(t.Context()); n != 0 {
			t.Fatalf("attempt %d delivered despite a failing receiver", i+1)
		}
		c.Advance(wait/2 + time.Second) // early: not retried yet
		o.Flush(t.Context())
		c.Advance(-wait/2 - time.Second)
	}
	c.Advance(4*time.Minute - time.Second)
	if n := o.Flush(t.Context()); n != 0 || sink.attempts["n1"] != 3 {
		t.Fatalf("retried before the backoff: %d attempts", sink.attempts["n1"])
	}
	c.Advance(time.Second)
	if n := o.Flush(t.Context()); n != 1 || o.Len() != 0 {
		t.Fatalf("Flush delivered %d, %d left; want 1 and 0", n, o.Len())
	}
}

// TestOutboxGivesUp: a notification that never gets through is dropped
// after MaxAttempts instead of piling up.
func TestOutboxGivesUp(t *testing.T) {
	c := &clock{t: t0}
	sink := &flaky{failures: 1000}
	o := newOutbox(sink, c)
	o.Notify(t.Context(), rollout.Notification{ID: "n1"})
	for range 10 {
		o.Flush(t.Context())
		c.Advance(time.Hour)
	}
	if sink.attempts["n1"] != 4 || o.Len() != 0 {
		t.Fatalf("%d attempts, %d queued; want 4 and 0", sink.attempts["n1"], o.Len())
	}
}

// TestOutboxBounded: when the queue is full the oldest notification goes.
func TestOutboxBounded(t *testing.T) {
	c := &clock{t: t0}
	sink := &flaky{}
	o := newOutbox(sink, c)
	o.MaxPending = 2
	for _, id := range []string{"a", "b", "c"} {
		o.Notify(t.Context(), rollout.Notification{ID: id})
	}
	o.Flush(t.Context())
	if len(sink.delivered) != 2 || sink.delivered[0] != "b" || sink.delivered[1] != "c" {
		t.Fatalf("delivered %v, want [b c]", sink.delivered)
	}
}

// TestOutboxConcurrentFlush: two flushes at once deliver each
// notification once.
func TestOutboxConcurrentFlush(t *testing.T) {
	c := &clock{t: t0}
	sink := &flaky{}
	o := newOutbox(sink, c)
	for i := range 100 {
		o.Notify(t.Context(), rollout.Notification{ID: string(rune('a'+i%26)) + string(rune('0'+i/26))})
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { o.Flush(t.Context()) })
	}
	wg.Wait()
	if len(sink.delivered) != 100 {
		t.Fatalf("%d deliveries, want 100", len(sink.delivered))
	}
}
