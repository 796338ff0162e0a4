package anomaly

import (
	"testing"

	"github.com/koshin-ota/koshin"
)

// FuzzAlertFromAudit: no audit entry panics the decoder, and what it
// accepts encodes back to the same target and decodes to the same alert.
func FuzzAlertFromAudit(f *testing.F) {
	f.Add("rejected-updates hardware:board-a", "count=12 threshold=5 baseline=1.25 window=15m0s")
	f.Add("lockouts fleet", "count=0 threshold=0 baseline=NaN window=x")
	f.Add("retry-storm group:", "count=-1 threshold=9999999999999999999 baseline=1e400 window=-1h")
	f.Fuzz(func(t *testing.T, target, detail string) {
		e := &koshin.AuditEntry{Principal: Principal, Action: ActionRaise, Target: target, Detail: detail}
		a, ok := alertFromAudit(e)
		if !ok {
			return
		}
		if a.auditTarget() != target {
			t.Fatalf("target %q decodes to %q", target, a.auditTarget())
		}
		b, ok := alertFromAudit(&koshin.AuditEntry{Principal: Principal, Action: ActionRaise, Target: a.auditTarget(), Detail: a.auditDetail()})
		if !ok || b.Signal != a.Signal || b.Scope != a.Scope || b.Count != a.Count || b.Threshold != a.Threshold {
			t.Fatalf("round trip: %+v, %+v", a, b)
		}
	})
}
