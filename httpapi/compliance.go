package httpapi

import (
	"net/http"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/anomaly"
)

// fleetFacts serves GET /api/v1/compliance/fleet: the fleet observations
// (evidence kind F) that `koshin compliance report --server` and the web
// UI put into conformance statements. 404 when the server computes none.
func (s *Server) fleetFacts(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if s.Fleet == nil {
		return errNotFound
	}
	f, err := s.Fleet.Facts(r.Context())
	if err != nil {
		return koshin.Internal(err)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, f)
	return nil
}

// defaultAlertSpan is how far back GET /api/v1/anomalies looks by default.
const defaultAlertSpan = 30 * 24 * time.Hour

// listAnomalies serves GET /api/v1/anomalies: telemetry anomaly alerts
// (EN 303 645 5.10-1) raised since `since` (default: 30 days), newest
// first, each with the time it cleared if it has.
func (s *Server) listAnomalies(w http.ResponseWriter, r *http.Request, _ *principal) error {
	q := newQuery(r)
	since, limit := q.time("since"), q.int("limit")
	if q.err != nil {
		return q.err
	}
	if since.IsZero() {
		since = s.now().Add(-defaultAlertSpan)
	}
	n, err := koshin.Limit(limit)
	if err != nil {
		return err
	}
	alerts, err := anomaly.ListAlerts(r.Context(), s.Store, since, n)
	if err != nil {
		return err
	}
	if alerts == nil {
		alerts = []anomaly.Alert{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": alerts})
	return nil
}
