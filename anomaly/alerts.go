package anomaly

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/koshin-ota/koshin"
)

// Audit-log vocabulary of the detector. Alerts live in the audit log: it
// is append-only and hash-chained, shared by every replica, and survives
// restarts, so an alert can be neither lost nor quietly removed.
const (
	Principal    = "system:anomaly-detector"
	ActionStart  = "anomaly.start" // the detector started, with its thresholds
	ActionRaise  = "anomaly.raise"
	ActionClear  = "anomaly.clear"
	detailFormat = "count=%d threshold=%d baseline=%.2f window=%s"
)

// Alert is one anomaly: a signal in a scope that rose above its threshold.
type Alert struct {
	Signal Signal `json:"signal"`
	Scope  Scope  `json:"scope"`
	// Count is the window's count when the alert was raised; Threshold
	// and Baseline are what it was judged against.
	Count     int           `json:"count"`
	Threshold int           `json:"threshold"`
	Baseline  float64       `json:"baseline"`
	Window    time.Duration `json:"window"`
	RaisedAt  time.Time     `json:"raised_at"`
	// ClearedAt is zero while the alert is active.
	ClearedAt time.Time `json:"cleared_at,omitzero"`
}

// Active reports whether the alert has not cleared.
func (a *Alert) Active() bool { return a.ClearedAt.IsZero() }

// Message describes the alert for people.
func (a *Alert) Message() string {
	return fmt.Sprintf("%s in %s: %d in %s (usual %.1f per window, threshold %d)",
		a.Signal, a.Scope, a.Count, a.Window, a.Baseline, a.Threshold)
}

func (a *Alert) auditTarget() string { return string(a.Signal) + " " + a.Scope.String() }

func (a *Alert) auditDetail() string {
	return fmt.Sprintf(detailFormat, a.Count, a.Threshold, a.Baseline, a.Window)
}

// alertFromAudit decodes a raise or clear entry; ok is false for entries
// that are not the detector's.
func alertFromAudit(e *koshin.AuditEntry) (a Alert, ok bool) {
	if e.Principal != Principal || (e.Action != ActionRaise && e.Action != ActionClear) {
		return a, false
	}
	sig, sc, found := strings.Cut(e.Target, " ")
	scope, valid := parseScope(sc)
	if !found || !valid || !slices.Contains(Signals, Signal(sig)) {
		return a, false
	}
	a.Signal, a.Scope = Signal(sig), scope
	var window string
	if _, err := fmt.Sscanf(e.Detail, "count=%d threshold=%d baseline=%g window=%s", &a.Count, &a.Threshold, &a.Baseline, &window); err != nil {
		return a, false
	}
	a.Window, _ = time.ParseDuration(window)
	return a, true
}

// AuditReader reads the audit log.
type AuditReader interface {
	FindAuditEntries(ctx context.Context, f koshin.AuditFilter) ([]*koshin.AuditEntry, error)
}

// maxListed bounds what ListAlerts returns and reads.
const maxListed = 1000

// ListAlerts returns the alerts raised since since, newest first, each with
// its clearing time if it cleared; at most limit (1 to 1000).
func ListAlerts(ctx context.Context, st AuditReader, since time.Time, limit int) ([]Alert, error) {
	limit = min(max(limit, 1), maxListed)
	raises, err := auditEntries(ctx, st, ActionRaise, since, maxListed)
	if err != nil {
		return nil, err
	}
	clears, err := auditEntries(ctx, st, ActionClear, since, maxListed)
	if err != nil {
		return nil, err
	}
	var out []Alert
	for i := len(raises) - 1; i >= 0 && len(out) < limit; i-- {
		a, ok := alertFromAudit(raises[i])
		if !ok {
			continue
		}
		a.RaisedAt = raises[i].Time
		for _, c := range clears {
			if c.Seq > raises[i].Seq && c.Target == raises[i].Target {
				a.ClearedAt = c.Time
				break
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// CountAlerts counts alerts raised since since. running reports whether an
// anomaly detector has ever started on this store: without one, no count
// means anything.
func CountAlerts(ctx context.Context, st AuditReader, since time.Time) (n int, running bool, err error) {
	started, err := st.FindAuditEntries(ctx, koshin.AuditFilter{Principal: Principal, Action: ActionStart,
		Page: koshin.SeqPage{Desc: true, Limit: 1}})
	if err != nil || len(started) == 0 {
		return 0, false, err
	}
	f := koshin.AuditFilter{Principal: Principal, Action: ActionRaise, Since: since, Page: koshin.SeqPage{Limit: koshin.MaxLimit}}
	for {
		page, err := st.FindAuditEntries(ctx, f)
		if err != nil {
			return 0, true, err
		}
		n += len(page)
		if len(page) < f.Page.Limit {
			return n, true, nil
		}
		f.Page.Cursor = page[len(page)-1].Seq
	}
}

// auditEntries reads up to max of the detector's entries of one action
// since since, oldest first; when there are more it keeps the newest.
func auditEntries(ctx context.Context, st AuditReader, action string, since time.Time, max int) ([]*koshin.AuditEntry, error) {
	f := koshin.AuditFilter{Principal: Principal, Action: action, Since: since, Page: koshin.SeqPage{Desc: true, Limit: koshin.MaxLimit}}
	var out []*koshin.AuditEntry
	for len(out) < max {
		page, err := st.FindAuditEntries(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < f.Page.Limit {
			break
		}
		f.Page.Cursor = page[len(page)-1].Seq
	}
	slices.Reverse(out)
	return out, nil
}
