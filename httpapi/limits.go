package httpapi

import (
	"hash/maphash"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/koshin-ota/koshin"
)

// admission caps the requests being served at once (CCDS UPD06). A
// request that finds no free slot is answered 503 at once rather than
// queued: under overload, queueing only adds latency to every request
// while devices time out and retry.
type admission struct{ slots chan struct{} }

func newAdmission(n int) *admission { return &admission{slots: make(chan struct{}, n)} }

func (a *admission) acquire() bool {
	select {
	case a.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (a *admission) release() { <-a.slots }

func (a *admission) inFlight() int { return len(a.slots) }

// keyedLimiter is a token bucket per key (device ID, source address).
// Buckets live in shards to keep lock contention low on the check-in path,
// and each shard holds a bounded number: idle buckets (full again) are
// dropped first, and if a flood of distinct keys fills a shard anyway,
// arbitrary buckets go, which at worst gives those keys a fresh burst.
type keyedLimiter struct {
	limit  rate.Limit
	burst  int
	seed   maphash.Seed
	shards [limiterShards]limiterShard
}

const (
	limiterShards   = 16
	maxBucketsShard = 1 << 14 // 256k keys in all
)

type limiterShard struct {
	mu sync.Mutex
	m  map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

func newKeyedLimiter(perSecond float64, burst int) *keyedLimiter {
	k := &keyedLimiter{limit: rate.Limit(perSecond), burst: burst, seed: maphash.MakeSeed()}
	for i := range k.shards {
		k.shards[i].m = map[string]*bucket{}
	}
	return k
}

// allow takes a token for key at now, or says how long until one is there.
func (k *keyedLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	sh := &k.shards[maphash.String(k.seed, key)%limiterShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b := sh.m[key]
	if b == nil {
		if len(sh.m) >= maxBucketsShard {
			k.evict(sh, now)
		}
		b = &bucket{lim: rate.NewLimiter(k.limit, k.burst)}
		sh.m[key] = b
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// evict drops buckets idle long enough to be full again, and if that frees
// too little, an arbitrary tenth of the shard.
func (k *keyedLimiter) evict(sh *limiterShard, now time.Time) {
	refill := time.Duration(float64(k.burst) / float64(k.limit) * float64(time.Second))
	for key, b := range sh.m {
		if now.Sub(b.last) >= refill {
			delete(sh.m, key)
		}
	}
	for key := range sh.m {
		if len(sh.m) < maxBucketsShard*9/10 {
			break
		}
		delete(sh.m, key)
	}
}

// sourceKey is the rate-limit key of a request's source: the IP address,
// or for IPv6 its /64, since one host usually holds a whole /64.
// X-Forwarded-For is not trusted: any client can set it.
func sourceKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// limitSource applies the per-source token bucket to every request.
func (s *Server) limitSource(api string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := s.addrLimits.allow(sourceKey(r), s.now()); !ok {
			s.Metrics.reject(api, "rate-limited-source")
			writeError(w, s.Log, r, retryLater(koshin.ETOOMANY, wait, "Too many requests from your address; retry later."))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// admit applies admission control with a.
func (s *Server) admit(api string, a *admission, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.acquire() {
			s.Metrics.reject(api, "overloaded")
			writeError(w, s.Log, r, retryLater(koshin.EUNAVAILABLE, s.Config.RetryAfter, "The server is busy; retry later."))
			return
		}
		defer a.release()
		next.ServeHTTP(w, r)
	})
}
