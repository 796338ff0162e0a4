package ui

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/koshin-ota/koshin"
)

const auditPerPage = 100

type auditData struct {
	Entries   []*koshin.AuditEntry
	Principal string
	Action    string
	Next      int64
	Verified  bool
	Head      koshin.AuditHead
	Broken    string
	BrokenSeq int64
	Took      time.Duration
}

// audit shows the hash-chained audit log (CCDS STS14, SSS04), newest
// first, with the result of walking the whole chain. Who may read it is
// the API's rule for GET /api/v1/audit.
func (u *UI) audit(w http.ResponseWriter, r *http.Request, s *session) error {
	if !u.can(s.Role, "GET", "/api/v1/audit") {
		return &apiError{Status: http.StatusForbidden, Message: "Your role does not allow this."}
	}
	q := r.URL.Query()
	d := &auditData{Principal: strings.TrimSpace(q.Get("principal")), Action: strings.TrimSpace(q.Get("action"))}
	f := koshin.AuditFilter{Principal: d.Principal, Action: d.Action, Page: koshin.SeqPage{Desc: true, Limit: auditPerPage}}
	if c := q.Get("cursor"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil {
			return koshin.Errorf(koshin.EINVALID, "The page cursor must be a number.")
		}
		f.Page.Cursor = n
	}
	if err := f.Validate(); err != nil {
		return err
	}
	es, err := u.Store.FindAuditEntries(r.Context(), f)
	if err != nil {
		return err
	}
	d.Entries = es
	if len(es) == auditPerPage {
		d.Next = es[len(es)-1].Seq
	}
	start := time.Now()
	head, err := u.Store.VerifyAudit(r.Context())
	d.Took = time.Since(start).Round(time.Millisecond)
	var ce *koshin.AuditChainError
	switch {
	case err == nil:
		d.Verified, d.Head = true, head
	case errors.As(err, &ce):
		d.Broken, d.BrokenSeq = ce.Reason, ce.Seq
	default:
		return err
	}
	u.render(w, r, http.StatusOK, "audit", &view{Title: "Audit log", Nav: "audit", S: s, Data: d})
	return nil
}
