package httpapi

import (
	"sync"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/totp"
)

// maxShadowNames bounds the in-memory state kept for unknown login names
// and TOTP codes.
const maxShadowNames = 10_000

// shadowLockout applies the lockout policy to names that are not
// operators, in memory, so that the answers for unknown and known names
// cannot be told apart. It is per replica and forgets on restart; that
// only weakens the disguise, not the protection of real accounts, whose
// lockout lives in the store.
type shadowLockout struct {
	mu sync.Mutex
	m  map[string]*shadowEntry
}

type shadowEntry struct {
	failures int
	until    time.Time
}

func newShadowLockout() *shadowLockout { return &shadowLockout{m: map[string]*shadowEntry{}} }

func (s *shadowLockout) locked(name string, now time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[name]
	if e == nil || !now.Before(e.until) {
		return time.Time{}, false
	}
	return e.until, true
}

func (s *shadowLockout) fail(name string, p koshin.LockoutPolicy, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[name]
	if e == nil {
		if len(s.m) >= maxShadowNames {
			s.evict(now)
		}
		e = &shadowEntry{}
		s.m[name] = e
	}
	e.failures++
	if d := p.Delay(e.failures); d > 0 {
		e.until = now.Add(d)
	}
}

// evict drops entries that are not locked, then arbitrary ones.
func (s *shadowLockout) evict(now time.Time) {
	for k, e := range s.m {
		if !now.Before(e.until) {
			delete(s.m, k)
		}
	}
	for k := range s.m {
		if len(s.m) < maxShadowNames {
			return
		}
		delete(s.m, k)
	}
}

// usedCodes refuses a TOTP code that was already used (RFC 6238 §5.2):
// per operator it remembers the last step that logged in. In memory and
// per replica; a code lives for at most three 30-second steps.
type usedCodes struct {
	mu   sync.Mutex
	last map[string]uint64
}

func newUsedCodes() *usedCodes { return &usedCodes{last: map[string]uint64{}} }

// use checks code and, if it is valid and newer than the last one used,
// records it.
func (u *usedCodes) use(name string, secret []byte, code string, now time.Time) bool {
	step, ok := totp.Verify(secret, code, now, totp.Default)
	if !ok {
		return false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if last, seen := u.last[name]; seen && step <= last {
		return false
	}
	if len(u.last) >= maxShadowNames {
		clear(u.last) // old steps are useless anyway: the skew window is 90 s
	}
	u.last[name] = step
	return true
}

// pendingTOTP holds secrets offered to operators who started enrolling a
// second factor, until they confirm with a code (so that a secret never
// becomes required before its owner has it in an app).
type pendingTOTP struct {
	mu sync.Mutex
	m  map[string]pendingSecret
}

type pendingSecret struct {
	secret  []byte
	expires time.Time
}

// pendingTOTPLifetime is how long an offered secret can be confirmed.
const pendingTOTPLifetime = 10 * time.Minute

func newPendingTOTP() *pendingTOTP { return &pendingTOTP{m: map[string]pendingSecret{}} }

func (p *pendingTOTP) offer(name string, secret []byte, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, v := range p.m {
		if !now.Before(v.expires) {
			delete(p.m, k)
		}
	}
	p.m[name] = pendingSecret{secret: secret, expires: now.Add(pendingTOTPLifetime)}
}

// get returns name's pending secret if it has not expired.
func (p *pendingTOTP) get(name string, now time.Time) ([]byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.m[name]
	if !ok || !now.Before(v.expires) {
		return nil, false
	}
	return v.secret, true
}

func (p *pendingTOTP) drop(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, name)
}
