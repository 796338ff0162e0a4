package koshin_test

import (
	"errors"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

func chain(n int) []*koshin.AuditEntry {
	var out []*koshin.AuditEntry
	var prev *koshin.AuditEntry
	for i := range n {
		e := &koshin.AuditEntry{Principal: "operator:alice", Action: "rollout.halt", Target: "rollout/1", Result: koshin.AuditOK}
		e.Seal(prev, time.Unix(1000+int64(i), 123456789))
		out = append(out, e)
		prev = e
	}
	return out
}

func TestAuditChain(t *testing.T) {
	entries := chain(5)
	if err := koshin.VerifyChain(nil, entries); err != nil {
		t.Fatalf("intact chain: %v", err)
	}
	if err := koshin.VerifyChain(entries[1], entries[2:]); err != nil {
		t.Fatalf("chain suffix: %v", err)
	}
	if entries[0].Time.Nanosecond()%1000 != 0 {
		t.Fatal("Seal did not truncate time to microseconds")
	}
	tamper := []struct {
		name   string
		mutate func([]*koshin.AuditEntry) []*koshin.AuditEntry
		seq    int64
	}{
		{"edited detail", func(es []*koshin.AuditEntry) []*koshin.AuditEntry { es[2].Detail = "x"; return es }, 3},
		{"edited time", func(es []*koshin.AuditEntry) []*koshin.AuditEntry {
			es[1].Time = es[1].Time.Add(time.Second)
			return es
		}, 2},
		{"deleted entry", func(es []*koshin.AuditEntry) []*koshin.AuditEntry { return append(es[:1:1], es[2:]...) }, 3},
		{"deleted first", func(es []*koshin.AuditEntry) []*koshin.AuditEntry { return es[1:] }, 2},
		{"swapped", func(es []*koshin.AuditEntry) []*koshin.AuditEntry { es[1], es[2] = es[2], es[1]; return es }, 3},
		{"rehashed edit", func(es []*koshin.AuditEntry) []*koshin.AuditEntry {
			es[1].Result = koshin.AuditDenied
			es[1].Hash = es[1].ComputeHash()
			return es
		}, 3},
	}
	for _, tt := range tamper {
		t.Run(tt.name, func(t *testing.T) {
			err := koshin.VerifyChain(nil, tt.mutate(chain(5)))
			wantCode(t, err, koshin.ECONFLICT)
			var ce *koshin.AuditChainError
			if !errors.As(err, &ce) || ce.Seq != tt.seq {
				t.Fatalf("err = %v, want chain error at %d", err, tt.seq)
			}
		})
	}
}

func TestAuditEntryValidate(t *testing.T) {
	ok := koshin.AuditEntry{Principal: "system", Action: "device.decommission", Result: koshin.AuditOK}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, mutate := range []func(*koshin.AuditEntry){
		func(e *koshin.AuditEntry) { e.Principal = "" },
		func(e *koshin.AuditEntry) { e.Action = "drop table" },
		func(e *koshin.AuditEntry) { e.Result = "maybe" },
		func(e *koshin.AuditEntry) { e.Detail = string(make([]byte, koshin.MaxAuditDetailLen+1)) },
	} {
		e := ok
		mutate(&e)
		wantCode(t, e.Validate(), koshin.EINVALID)
	}
}

func TestValidateReleaseName(t *testing.T) {
	for _, ok := range []string{"rootfs.img", "board-a/rootfs-1.2.3+b1.img"} {
		if err := koshin.ValidateReleaseName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/abs", "a//b", "a/../b", "a/./b", "dir/", "a b", "a\x00b"} {
		wantCode(t, koshin.ValidateReleaseName(bad), koshin.EINVALID)
	}
}
