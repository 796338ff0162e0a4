package control

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/koshin-ota/koshin/deviceapi"
)

// authenticate runs the checks of the package documentation in order —
// lockout, peer credentials, token — before the request reaches a handler.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) {
	cr, ok := r.Context().Value(credKey{}).(credResult)
	if !ok || cr.err != nil {
		// No kernel credentials (not a Unix socket, or the fake said
		// no): nobody to count a failure against, refuse outright.
		writeJSON(w, http.StatusForbidden, ErrorBody{Error: "peer credentials unavailable"})
		return
	}
	uid := cr.cred.UID
	if left, locked := s.lock.locked(uid); locked {
		w.Header().Set("Retry-After", strconv.Itoa(int(left.Round(time.Second)/time.Second)+1))
		writeJSON(w, http.StatusTooManyRequests, ErrorBody{Error: "locked out after repeated authentication failures"})
		return
	}
	if !s.allowed(cr.cred) {
		s.failed(uid, "peer not allowed")
		writeJSON(w, http.StatusForbidden, ErrorBody{Error: "this user may not use the agent's control API"})
		return
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !tokenEqual(tok, s.currentToken()) {
		s.failed(uid, "bad token")
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeJSON(w, http.StatusUnauthorized, ErrorBody{Error: "missing or wrong token"})
		return
	}
	s.lock.succeed(uid)
	r = r.WithContext(context.WithValue(r.Context(), credKey{}, cr.cred))
	s.mux.ServeHTTP(w, r)
}

// allowed: root always, else a configured UID or primary GID.
func (s *Server) allowed(c Cred) bool {
	return c.UID == 0 || slices.Contains(s.cfg.AllowedUIDs, c.UID) || slices.Contains(s.cfg.AllowedGIDs, c.GID)
}

// failed counts a failure; a lockout is persisted, logged and reported.
func (s *Server) failed(uid uint32, why string) {
	s.cfg.Log.Warn("control API authentication failed", "uid", uid, "reason", why)
	d, locked := s.lock.fail(uid)
	if !locked {
		return
	}
	s.saveLockouts()
	s.cfg.Log.Warn("control API lockout", "uid", uid, "for", d, "lockouts", s.lock.lockouts())
	s.report(deviceapi.EventLockout, "", "local-api",
		fmt.Sprintf("uid %d locked out of the local control API for %s after repeated failures", uid, d))
}

type lockoutRecord struct {
	Lockouts uint32 `json:"lockouts"`
}

// loadLockouts reads the persisted count, so it survives restarts.
func (s *Server) loadLockouts() uint32 {
	b, err := s.state.ReadFile(lockoutFile)
	if err != nil {
		return 0
	}
	var rec lockoutRecord
	if json.Unmarshal(b, &rec) != nil {
		return 0
	}
	return rec.Lockouts
}

func (s *Server) saveLockouts() {
	b, _ := json.Marshal(lockoutRecord{Lockouts: s.lock.lockouts()})
	if err := s.state.WriteFile(lockoutFile, b); err != nil {
		s.cfg.Log.Error("persist lockout count", "err", err)
	}
}
