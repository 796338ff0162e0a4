package rollout

import (
	"sync"
	"time"

	"github.com/koshin-ota/koshin"
)

// offerLimiter paces offers per rollout with a token bucket that holds
// RatePerMinute tokens and refills at that rate: a batch of up to
// RatePerMinute devices, then a steady RatePerMinute per minute
// (EN 303 645 5.9-3).
//
// The engine already creates assignments at that pace from a count kept in
// the store; this limiter smooths what the store count cannot see, such as
// an administrator approving a whole group at once or pending devices
// released together when a window opens. It lives in memory, per server
// replica.
type offerLimiter struct {
	mu      sync.Mutex
	buckets map[int64]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxIdleBuckets is how many buckets are kept before idle ones are
// dropped; a bucket idle for a RateWindow is full, so dropping it loses
// nothing.
const maxIdleBuckets = 1024

// allow takes a token for rollout id at now if one is available.
func (l *offerLimiter) allow(id int64, perMinute int, now time.Time) bool {
	if perMinute <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[int64]*bucket{}
	}
	b := l.buckets[id]
	if b == nil {
		l.prune(now)
		b = &bucket{tokens: float64(perMinute), last: now}
		l.buckets[id] = b
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(float64(perMinute), b.tokens+float64(perMinute)*elapsed.Minutes())
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (l *offerLimiter) prune(now time.Time) {
	if len(l.buckets) < maxIdleBuckets {
		return
	}
	for id, b := range l.buckets {
		if now.Sub(b.last) >= koshin.RateWindow {
			delete(l.buckets, id)
		}
	}
}
