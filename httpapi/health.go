package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/koshin-ota/koshin"
)

func (s *Server) healthzM(w http.ResponseWriter, r *http.Request, _ *principal) error {
	s.healthz(w, r)
	return nil
}

// readyz reports whether the server can serve: the store answers a read.
// The answer names no component or version (EN 303 645 5.6-2).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ *principal) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.Store.FindReleases(ctx, koshin.ReleaseFilter{Limit: 1}); err != nil {
		s.Log.Warn("not ready", "err", err)
		return koshin.Errorf(koshin.EUNAVAILABLE, "Not ready.")
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

// metrics serves Prometheus metrics to any authenticated role: they
// include the Go runtime version, which unauthenticated callers must not
// learn (EN 303 645 5.6-2). Prometheus sends the token with
// authorization.credentials.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request, _ *principal) error {
	s.Metrics.handler().ServeHTTP(w, r)
	return nil
}
