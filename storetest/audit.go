package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

func (e *env) audit(t *testing.T, principal, action, target string) *koshin.AuditEntry {
	t.Helper()
	a := &koshin.AuditEntry{Principal: principal, Action: action, Target: target, Result: koshin.AuditOK, Detail: `{"k":"v"}`}
	must(t, e.s.AppendAudit(e.ctx, a))
	return a
}

// testAudit: entries are sealed into one chain in order, also under
// concurrent appends, and list by filter (CCDS STS14).
func testAudit(t *testing.T, e *env) {
	head, err := e.s.VerifyAudit(e.ctx)
	must(t, err)
	if head.Seq != 0 {
		t.Fatalf("empty log head = %+v", head)
	}
	first := e.audit(t, "operator:alice", "rollout.create", "rollout/1")
	if first.Seq != 1 || !bytes.Equal(first.PrevHash, make([]byte, 32)) || len(first.Hash) != 32 {
		t.Fatalf("first entry %+v", first)
	}
	equalTime(t, "time", first.Time, e.clock.Now())
	e.clock.Advance(time.Minute)
	second := e.audit(t, "operator:bob", "rollout.halt", "rollout/1")
	if second.Seq != 2 || !bytes.Equal(second.PrevHash, first.Hash) {
		t.Fatalf("second entry not chained: %+v", second)
	}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			a := &koshin.AuditEntry{Principal: "system", Action: "device.enroll", Target: fmt.Sprint(i), Result: koshin.AuditOK}
			if err := e.s.AppendAudit(e.ctx, a); err != nil {
				t.Errorf("AppendAudit: %v", err)
			}
		})
	}
	wg.Wait()
	head, err = e.s.VerifyAudit(e.ctx)
	must(t, err)
	if head.Seq != 12 {
		t.Fatalf("head = %d, want 12", head.Seq)
	}
	wantCode(t, e.s.AppendAudit(e.ctx, &koshin.AuditEntry{Principal: "x", Action: "a b", Result: koshin.AuditOK}), koshin.EINVALID)
	testAuditQueries(t, e, second)
}

func testAuditQueries(t *testing.T, e *env, second *koshin.AuditEntry) {
	tests := []struct {
		f    koshin.AuditFilter
		want []int64
	}{
		{koshin.AuditFilter{Principal: "operator:bob"}, []int64{2}},
		{koshin.AuditFilter{Action: "rollout.create"}, []int64{1}},
		{koshin.AuditFilter{Since: second.Time, Page: koshin.SeqPage{Limit: 3}}, []int64{2, 3, 4}},
		{koshin.AuditFilter{Page: koshin.SeqPage{Desc: true, Limit: 2}}, []int64{12, 11}},
		{koshin.AuditFilter{Page: koshin.SeqPage{Desc: true, Cursor: 3}}, []int64{2, 1}},
		{koshin.AuditFilter{Page: koshin.SeqPage{Cursor: 10}}, []int64{11, 12}},
	}
	for i, tt := range tests {
		list, err := e.s.FindAuditEntries(e.ctx, tt.f)
		must(t, err)
		var seqs []int64
		for _, a := range list {
			seqs = append(seqs, a.Seq)
		}
		if fmt.Sprint(seqs) != fmt.Sprint(tt.want) {
			t.Errorf("filter %d: %v, want %v", i, seqs, tt.want)
		}
	}
	all, err := e.s.FindAuditEntries(e.ctx, koshin.AuditFilter{})
	must(t, err)
	if err := koshin.VerifyChain(nil, all); err != nil {
		t.Fatalf("listed entries do not verify: %v", err)
	}
	_, err = e.s.FindAuditEntries(e.ctx, koshin.AuditFilter{Page: koshin.SeqPage{Cursor: -1}})
	wantCode(t, err, koshin.EINVALID)
}

// testAuditTamper: an entry edited behind the store's back breaks the
// chain at that entry.
func testAuditTamper(t *testing.T, e *env) {
	if e.b.TamperAudit == nil {
		t.Skip("backend cannot tamper")
	}
	for i := range 3 {
		e.audit(t, "operator:alice", "device.decommission", fmt.Sprint("device/", i))
	}
	e.b.TamperAudit(t, e.s, 2, `{"k":"forged"}`)
	_, err := e.s.VerifyAudit(e.ctx)
	wantCode(t, err, koshin.ECONFLICT)
	var ce *koshin.AuditChainError
	if !errors.As(err, &ce) || ce.Seq != 2 {
		t.Fatalf("err = %v, want a chain error at entry 2", err)
	}
}
