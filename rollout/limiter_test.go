package rollout

import (
	"testing"
	"time"
)

// TestOfferLimiter: a burst of up to the rate, then the rate per minute;
// rollouts are limited separately and a zero rate is unlimited.
func TestOfferLimiter(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		rate  int
		steps []step
	}{
		{"burst then empty", 10, []step{{0, 12, 10}}},
		{"refills at the rate", 10, []step{{0, 10, 10}, {30 * time.Second, 10, 5}, {90 * time.Second, 20, 10}}},
		{"never above the burst", 4, []step{{0, 4, 4}, {time.Hour, 10, 4}}},
		{"clock going back takes nothing", 6, []step{{time.Minute, 6, 6}, {0, 6, 0}}},
		{"unlimited", 0, []step{{0, 1000, 1000}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l offerLimiter
			for i, s := range tt.steps {
				got := 0
				for range s.tries {
					if l.allow(1, tt.rate, t0.Add(s.at)) {
						got++
					}
				}
				if got != s.want {
					t.Fatalf("step %d: allowed %d of %d, want %d", i, got, s.tries, s.want)
				}
			}
			if tt.rate > 0 && !l.allow(2, tt.rate, t0) {
				t.Fatal("another rollout shares the bucket")
			}
		})
	}
}

type step struct {
	at    time.Duration
	tries int
	want  int
}

// TestOfferLimiterPrunesIdle: idle buckets are dropped once there are many,
// and only idle ones.
func TestOfferLimiterPrunesIdle(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	var l offerLimiter
	for id := range int64(maxIdleBuckets) {
		l.allow(id, 1, t0)
	}
	l.allow(-1, 1, t0.Add(30*time.Second)) // nothing idle a full minute yet
	if len(l.buckets) != maxIdleBuckets+1 {
		t.Fatalf("%d buckets, want %d", len(l.buckets), maxIdleBuckets+1)
	}
	l.allow(-2, 1, t0.Add(80*time.Second))
	if len(l.buckets) != 2 {
		t.Fatalf("%d buckets after pruning, want 2", len(l.buckets))
	}
	if l.allow(-1, 1, t0.Add(80*time.Second)) { // its token was taken 50s ago
		t.Fatal("pruning dropped a bucket that was not idle")
	}
}
