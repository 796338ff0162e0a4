package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/password"
)

// maxSmallBody bounds credential requests.
const maxSmallBody = 4 << 10

type loginRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
	// TOTP is the one-time code when the operator enrolled a second factor.
	TOTP string `json:"totp,omitempty"`
}

func (l *loginRequest) validate() error {
	if koshin.ValidateID("Name", l.Name) != nil || l.Password == "" || len(l.Password) > password.MaxLen || len(l.TOTP) > 16 {
		return koshin.Errorf(koshin.EINVALID, "A login needs a name, a password of at most %d bytes and optionally a one-time code.", password.MaxLen)
	}
	return nil
}

type sessionResponse struct {
	Token     string      `json:"token"`
	ExpiresAt time.Time   `json:"expires_at"`
	Operator  string      `json:"operator"`
	Role      koshin.Role `json:"role"`
}

// login exchanges a password (and a TOTP code once enrolled, CCDS ORG08)
// for a session token. Brute force is made impracticable (EN 303 645
// 5.1-5, CCDS STS13) three ways: a token bucket per source address, the
// account lockout with growing delay (koshin.LockoutPolicy, configurable),
// and Argon2id's cost. An unknown name is answered exactly like a wrong
// password, lockout included, so names cannot be enumerated.
func (s *Server) login(w http.ResponseWriter, r *http.Request, _ *principal) error {
	now := s.now()
	if ok, wait := s.loginLimits.allow(sourceKey(r), now); !ok {
		s.Metrics.logins.WithLabelValues("limited").Inc()
		return retryLater(koshin.ETOOMANY, wait, "Too many login attempts from your address; retry later.")
	}
	var req loginRequest
	if err := decodeJSON(w, r, &req, maxSmallBody); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	o, err := s.Store.FindOperatorByName(r.Context(), req.Name)
	if koshin.ErrorCode(err) == koshin.ENOTFOUND {
		return s.loginUnknown(r.Context(), &req, now)
	} else if err != nil {
		return err
	}
	if o.Locked(now) {
		return s.lockedOut(r.Context(), req.Name, o.LockedUntil, now)
	}
	ok, err := s.checkPassword(o.PasswordHash, req.Password)
	if err != nil {
		return err
	}
	if ok && len(o.TOTPSecret) > 0 {
		if req.TOTP == "" {
			s.Metrics.logins.WithLabelValues("totp-required").Inc()
			return koshin.Errorf(koshin.EUNAUTHORIZED, "A one-time code is required.")
		}
		if ok, err = s.useTOTP(r.Context(), o.Name, o.TOTPSecret, req.TOTP, now); err != nil {
			return err
		}
	}
	if !ok {
		return s.loginFailed(r.Context(), req.Name, now)
	}
	resp, err := s.startSession(r.Context(), o, req.Password, now)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// checkPassword verifies under the hashing slots: a flood of logins waits
// for a slot briefly or is told to retry, rather than running unbounded
// Argon2id instances at once.
func (s *Server) checkPassword(encoded, pw string) (bool, error) {
	release, err := s.acquireHash()
	if err != nil {
		return false, err
	}
	defer release()
	ok, err := password.Verify(pw, encoded)
	if err != nil {
		return false, koshin.Internal(err)
	}
	return ok, nil
}

func (s *Server) loginFailed(ctx context.Context, name string, now time.Time) error {
	o, err := s.Store.RecordLoginFailure(ctx, name, s.Config.Lockout, now)
	if err != nil {
		return err
	}
	detail := "wrong password or code; failure " + strconv.Itoa(o.FailedLogins)
	if o.Locked(now) {
		detail += "; locked until " + o.LockedUntil.UTC().Format(time.RFC3339)
	}
	s.Metrics.logins.WithLabelValues("denied").Inc()
	s.audit(ctx, "login:"+name, "session.login", "operator:"+name, errBadCredentials, detail)
	return errBadCredentials
}

func (s *Server) lockedOut(ctx context.Context, name string, until, now time.Time) error {
	s.Metrics.logins.WithLabelValues("locked").Inc()
	err := retryLater(koshin.ETOOMANY, until.Sub(now), "Too many failed logins; this account is locked for now. Retry later.")
	s.audit(ctx, "login:"+name, "session.login", "operator:"+name, err, "locked until "+until.UTC().Format(time.RFC3339))
	return err
}

// loginUnknown spends the same hashing work as a real check and keeps a
// lockout for the name in memory, so an unknown name behaves like a known
// one with a wrong password.
func (s *Server) loginUnknown(ctx context.Context, req *loginRequest, now time.Time) error {
	if until, locked := s.shadow.locked(req.Name, now); locked {
		return s.lockedOut(ctx, req.Name, until, now)
	}
	if _, err := s.checkPassword(s.dummyHash, req.Password); err != nil {
		return err
	}
	s.shadow.fail(req.Name, s.Config.Lockout, now)
	s.Metrics.logins.WithLabelValues("denied").Inc()
	s.audit(ctx, "login:"+req.Name, "session.login", "operator:"+req.Name, errBadCredentials, "unknown operator")
	return errBadCredentials
}

// startSession records the success, upgrades the password hash if the
// configured cost changed, and issues a session token.
func (s *Server) startSession(ctx context.Context, o *koshin.Operator, pw string, now time.Time) (*sessionResponse, error) {
	if _, err := s.Store.RecordLoginSuccess(ctx, o.Name, now); err != nil {
		return nil, err
	}
	if password.NeedsRehash(o.PasswordHash, s.Config.Password) {
		if h, err := s.Config.Password.Hash(pw); err == nil {
			if _, err := s.Store.UpdateOperator(ctx, o.Name, koshin.OperatorUpdate{PasswordHash: &h}); err != nil {
				s.Log.Warn("password rehash failed", "operator", o.Name, "err", err)
			}
		}
	}
	s.pruneTokens(ctx, o.Name, now)
	secret := sessionPrefix + koshin.NewSecret()
	t := &koshin.APIToken{Operator: o.Name, Name: sessionNamePrefix + randomHex(6), Role: o.Role,
		Hash: koshin.HashSecret(secret), ExpiresAt: now.Add(s.Config.SessionLifetime)}
	err := s.Store.CreateAPIToken(ctx, t)
	s.audit(ctx, "operator:"+o.Name, "session.login", "operator:"+o.Name, err, "session "+t.Name)
	if err != nil {
		return nil, err
	}
	s.Metrics.logins.WithLabelValues("ok").Inc()
	return &sessionResponse{Token: secret, ExpiresAt: t.ExpiresAt, Operator: o.Name, Role: o.Role}, nil
}

// pruneTokens deletes the operator's expired tokens and sessions, so that
// sessions do not pile up against the per-operator token limit.
func (s *Server) pruneTokens(ctx context.Context, name string, now time.Time) {
	ts, err := s.Store.FindAPITokens(ctx, name)
	if err != nil {
		return
	}
	for _, t := range ts {
		if t.Expired(now) {
			s.Store.DeleteAPIToken(ctx, t.ID)
		}
	}
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, p *principal) error {
	err := s.Store.DeleteAPIToken(r.Context(), p.TokenID)
	s.audit(r.Context(), p.String(), "session.logout", "operator:"+p.Operator, err, "")
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type meResponse struct {
	Operator string      `json:"operator"`
	Role     koshin.Role `json:"role"`
	Session  bool        `json:"session"`
	TokenID  int64       `json:"token_id"`
	TOTP     bool        `json:"totp"`
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, p *principal) error {
	o, err := s.Store.FindOperatorByName(r.Context(), p.Operator)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, meResponse{Operator: p.Operator, Role: p.Role, Session: p.Session, TokenID: p.TokenID, TOTP: len(o.TOTPSecret) > 0})
	return nil
}

// hashWait is how long a password check waits for a hashing slot.
const hashWait = 2 * time.Second

// acquireHash takes a hashing slot: Argon2id uses Config.Password.Memory
// per run, so the number of runs at once is what bounds memory.
func (s *Server) acquireHash() (release func(), err error) {
	t := time.NewTimer(hashWait)
	defer t.Stop()
	select {
	case s.hashSlots <- struct{}{}:
		return func() { <-s.hashSlots }, nil
	case <-t.C:
		return nil, retryLater(koshin.EUNAVAILABLE, time.Second, "The server is busy; retry later.")
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand documents a fatal error otherwise)
	return hex.EncodeToString(b)
}
