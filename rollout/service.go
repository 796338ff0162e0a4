package rollout

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
	"unicode/utf8"

	"github.com/koshin-ota/koshin"
)

// Service carries out rollout operations for the management API, the CLI
// and the device API. Each operation validates its input, applies the
// change with one store call (so that a crash leaves it either done or not
// done) and then appends an audit entry with the principal, action, target
// and result (CCDS STS14).
//
// The zero value is not usable: set Store. Other fields have defaults.
type Service struct {
	Store Store
	// Notifier receives failed installs and rollbacks (CCDS UPD10). Use an
	// *Outbox so that a device's request never waits for a receiver.
	Notifier Notifier
	// Now is the clock for rule-bearing times (deadlines, windows, rates).
	Now func() time.Time
	// Seed returns the sampling seed of a new rollout's plan; it is
	// recorded with the rollout so that the plan can be recomputed.
	Seed func() int64
	Log  *slog.Logger

	offers offerLimiter
}

// SystemPrincipal is the audit principal of changes the engine makes on
// its own.
const SystemPrincipal = "system:rollout-engine"

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Service) seed() int64 {
	for {
		var v int64
		if s.Seed != nil {
			v = s.Seed()
		} else {
			v = rand.Int64() // not secret: it only makes the plan reproducible
		}
		if v != 0 { // zero asks the store to choose; we want it recorded
			return v
		}
	}
}

func (s *Service) logger() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

// record appends the audit entry for an operation that returned err.
func (s *Service) record(ctx context.Context, principal, action, target string, err error, detail string) {
	audit(ctx, s.Store, s.logger(), principal, action, target, err, detail)
}

// audit appends one entry. A failed append cannot undo the change it
// records, so it is logged rather than returned: the caller's operation
// did happen. It uses a context that outlives the request's, so that a
// client hanging up after the change does not also drop its audit entry.
func audit(ctx context.Context, st Store, log *slog.Logger, principal, action, target string, err error, detail string) {
	e := &koshin.AuditEntry{Principal: principal, Action: action, Target: target, Result: koshin.AuditOK, Detail: detail}
	if err != nil {
		e.Result = koshin.AuditFailed
		e.Detail = koshin.ErrorMessage(err)
		if detail != "" {
			e.Detail = detail + ": " + e.Detail
		}
	}
	e.Detail = truncate(e.Detail, koshin.MaxAuditDetailLen)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), koshin.AuditWriteTimeout)
	defer cancel()
	if aerr := st.AppendAudit(ctx, e); aerr != nil {
		log.Error("audit entry not written", "principal", principal, "action", action, "target", target, "err", aerr)
	}
}

// notify hands n to the notifier; a failure is logged, never returned, so
// that notification trouble cannot fail the change it reports.
func notify(ctx context.Context, nf Notifier, log *slog.Logger, n Notification) {
	if nf == nil {
		return
	}
	if err := nf.Notify(ctx, n); err != nil {
		log.Error("notification failed", "id", n.ID, "kind", n.Kind, "err", err)
	}
}

func rolloutTarget(id int64) string    { return fmt.Sprintf("rollout:%d", id) }
func assignmentTarget(id int64) string { return fmt.Sprintf("assignment:%d", id) }

// isConflict reports whether err says the state moved under us: another
// replica or operator got there first.
func isConflict(err error) bool { return koshin.ErrorCode(err) == koshin.ECONFLICT }

func isNotFound(err error) bool { return koshin.ErrorCode(err) == koshin.ENOTFOUND }

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
