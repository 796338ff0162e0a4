package httpapi

import (
	"net/http"

	"github.com/koshin-ota/koshin"
)

// listEvents pages through device events (CCDS UPD09), filtered by
// device, type and time received.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, _ *principal) error {
	q := newQuery(r)
	f := koshin.EventFilter{DeviceID: q.str("device_id"), Type: koshin.EventType(q.str("type")), Since: q.time("since"), Page: q.seqPage()}
	if q.err != nil {
		return q.err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	evs, err := s.Store.FindEvents(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, seqList(evs, f.Page.Limit, func(e *koshin.Event) int64 { return e.Seq }))
	return nil
}

// listAudit pages through the audit log (CCDS STS14) for administrators
// and auditors.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, _ *principal) error {
	q := newQuery(r)
	f := koshin.AuditFilter{Principal: q.str("principal"), Action: q.str("action"), Since: q.time("since"), Page: q.seqPage()}
	if q.err != nil {
		return q.err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	es, err := s.Store.FindAuditEntries(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, seqList(es, f.Page.Limit, func(e *koshin.AuditEntry) int64 { return e.Seq }))
	return nil
}

// verifyAudit walks the hash chain and returns its head, which auditors
// record elsewhere so that a later truncation is detectable. A broken
// chain is a 409 naming the first bad entry.
func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request, _ *principal) error {
	head, err := s.Store.VerifyAudit(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, head)
	return nil
}
