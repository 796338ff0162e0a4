package httpapi

import (
	"context"
	"sync"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/totp"
)

// maxShadowNames bounds the in-memory state kept for unknown login names.
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

// useTOTP checks a one-time code against secret and records its time step
// in the store, so that each code works once whichever replica it reaches
// (RFC 6238 §5.2). A replayed code is refused like a wrong one.
func (s *Server) useTOTP(ctx context.Context, name string, secret []byte, code string, now time.Time) (bool, error) {
	step, ok := totp.Verify(secret, code, now, totp.Default)
	if !ok {
		return false, nil
	}
	switch err := s.Store.UseTOTPStep(ctx, name, int64(step)); koshin.ErrorCode(err) {
	case "":
		return true, nil
	case koshin.ECONFLICT:
		return false, nil
	default:
		return false, err
	}
}

// pendingTOTPLifetime is how long an offered second-factor secret can be
// confirmed. Offers are kept in the store (koshin.OperatorStore.OfferTOTP),
// so the offer and the confirmation may reach different replicas.
const pendingTOTPLifetime = 10 * time.Minute
