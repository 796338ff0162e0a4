package control

import (
	"sync"
	"time"
)

// LockoutPolicy configures the lockout after failed authentication
// (CCDS STS13, EN 303 645 5.1-5): after MaxFailures consecutive failures a
// UID is refused for Base, doubling with every further lockout up to Max.
// A success resets the UID's count and delay.
type LockoutPolicy struct {
	MaxFailures int
	Base, Max   time.Duration
}

// Default lockout policy.
const (
	DefaultMaxFailures = 5
	DefaultLockoutBase = 30 * time.Second
	DefaultLockoutMax  = time.Hour
)

func (p LockoutPolicy) withDefaults() LockoutPolicy {
	if p.MaxFailures <= 0 {
		p.MaxFailures = DefaultMaxFailures
	}
	if p.Base <= 0 {
		p.Base = DefaultLockoutBase
	}
	if p.Max < p.Base {
		p.Max = max(DefaultLockoutMax, p.Base)
	}
	return p
}

// maxTracked bounds the per-UID records; only root can create processes
// with arbitrary UIDs, so this is a guard, not a limit met in practice.
const maxTracked = 1024

// lockout tracks failures per peer UID.
type lockout struct {
	policy LockoutPolicy
	now    func() time.Time

	mu    sync.Mutex
	peers map[uint32]*peerState
	total uint32
}

type peerState struct {
	failures int
	level    int // lockouts so far: the next lasts Base·2^level
	until    time.Time
}

func newLockout(p LockoutPolicy, now func() time.Time, total uint32) *lockout {
	return &lockout{policy: p.withDefaults(), now: now, peers: map[uint32]*peerState{}, total: total}
}

// locked returns how long uid remains locked out.
func (l *lockout) locked(uid uint32) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.peers[uid]
	if p == nil {
		return 0, false
	}
	left := p.until.Sub(l.now())
	return left, left > 0
}

// fail counts a failure; when it completes MaxFailures it locks uid out
// and returns the delay.
func (l *lockout) fail(uid uint32) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := l.peers[uid]
	if p == nil {
		l.evict()
		p = &peerState{}
		l.peers[uid] = p
	}
	p.failures++
	if p.failures < l.policy.MaxFailures {
		return 0, false
	}
	d := l.policy.Max
	if p.level < 32 && l.policy.Base<<p.level > 0 {
		d = min(l.policy.Base<<p.level, l.policy.Max)
	}
	p.failures, p.until = 0, l.now().Add(d)
	p.level++
	l.total++
	return d, true
}

// evict drops records of UIDs that are neither locked nor failing, and,
// if still full, the oldest lockout.
func (l *lockout) evict() {
	if len(l.peers) < maxTracked {
		return
	}
	now := l.now()
	var oldest uint32
	var oldestUntil time.Time
	for uid, p := range l.peers {
		if p.failures == 0 && !p.until.After(now) {
			delete(l.peers, uid)
			continue
		}
		if oldestUntil.IsZero() || p.until.Before(oldestUntil) {
			oldest, oldestUntil = uid, p.until
		}
	}
	if len(l.peers) >= maxTracked {
		delete(l.peers, oldest)
	}
}

// succeed resets uid's record.
func (l *lockout) succeed(uid uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.peers, uid)
}

// lockouts returns how many lockouts happened (persisted by the caller).
func (l *lockout) lockouts() uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// reset forgets every record and the count: after a factory reset the new
// identity reports its own history, unlinked from the old one.
func (l *lockout) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.peers = map[uint32]*peerState{}
	l.total = 0
}
