package httpapi

import (
	"context"
	"unicode/utf8"

	"github.com/koshin-ota/koshin"
)

// audit appends one entry for an action that ended with err (CCDS STS14,
// SSS04): ok, denied (authentication or authorisation refused) or failed.
// The entry outlives the request's context, so a client that hangs up after
// a change cannot drop its record. A failed append is logged: it cannot
// undo the change it would have recorded.
func (s *Server) audit(ctx context.Context, principal, action, target string, err error, detail string) {
	e := &koshin.AuditEntry{Principal: clip(principal, 128), Action: action, Target: clip(target, koshin.MaxNameLen), Result: koshin.AuditOK, Detail: detail}
	if err != nil {
		e.Result = koshin.AuditFailed
		switch koshin.ErrorCode(err) {
		case koshin.EUNAUTHORIZED, koshin.EFORBIDDEN, koshin.ETOOMANY:
			e.Result = koshin.AuditDenied
		}
		e.Detail = joinDetail(detail, koshin.ErrorMessage(err))
	}
	e.Detail = clip(e.Detail, koshin.MaxAuditDetailLen)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), koshin.AuditWriteTimeout)
	defer cancel()
	if aerr := s.Store.AppendAudit(ctx, e); aerr != nil {
		s.Log.Error("audit entry not written", "principal", principal, "action", action, "target", target, "err", aerr)
	}
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + ": " + b
}

// clip cuts s to at most n bytes without splitting a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
