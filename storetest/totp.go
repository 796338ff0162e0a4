package storetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

// testTOTPState: a one-time code's step is accepted once, also when two
// replicas see the same code at the same instant; an offered secret is kept
// until it expires or a secret is set.
func testTOTPState(t *testing.T, e *env) {
	e.createOperator(t, "alice", koshin.RoleAdmin)
	must(t, e.s.UseTOTPStep(e.ctx, "alice", 1000))
	wantCode(t, e.s.UseTOTPStep(e.ctx, "alice", 1000), koshin.ECONFLICT)
	wantCode(t, e.s.UseTOTPStep(e.ctx, "alice", 999), koshin.ECONFLICT)
	wantCode(t, e.s.UseTOTPStep(e.ctx, "mallory", 1001), koshin.ENOTFOUND)
	wantCode(t, e.s.UseTOTPStep(e.ctx, "alice", -1), koshin.EINVALID)
	must(t, e.s.UseTOTPStep(e.ctx, "alice", 1001))
	if o, err := e.s.FindOperatorByName(e.ctx, "alice"); err != nil || o.TOTPLastStep != 1001 {
		t.Fatalf("last step %+v, %v", o, err)
	}

	stores := []koshin.Store{e.s, e.s}
	if e.b.OpenPeer != nil {
		stores[1] = e.b.OpenPeer(t, e.s, e.clock.Now)
	}
	for step := int64(2000); step < 2010; step++ {
		var ok atomic.Int32
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := stores[i%2].UseTOTPStep(e.ctx, "alice", step)
				if err == nil {
					ok.Add(1)
				} else if koshin.ErrorCode(err) != koshin.ECONFLICT {
					t.Errorf("UseTOTPStep: %v", err)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 1 {
			t.Fatalf("step %d accepted %d times, want once", step, ok.Load())
		}
	}

	now := e.clock.Now()
	secret := []byte("0123456789abcdefghij")
	wantCode(t, e.s.OfferTOTP(e.ctx, "alice", []byte("short"), now.Add(time.Minute)), koshin.EINVALID)
	wantCode(t, e.s.OfferTOTP(e.ctx, "alice", nil, now.Add(time.Minute)), koshin.EINVALID)
	wantCode(t, e.s.OfferTOTP(e.ctx, "mallory", secret, now.Add(time.Minute)), koshin.ENOTFOUND)
	must(t, e.s.OfferTOTP(e.ctx, "alice", secret, now.Add(10*time.Minute)))
	o, err := e.s.FindOperatorByName(e.ctx, "alice")
	must(t, err)
	if got, ok := o.PendingTOTP(now); !ok || string(got) != string(secret) || len(o.TOTPSecret) != 0 {
		t.Fatalf("pending %q %v, secret %q", got, ok, o.TOTPSecret)
	}
	if _, ok := o.PendingTOTP(now.Add(10 * time.Minute)); ok {
		t.Fatal("offer still pending after it expired")
	}
	o, err = e.s.UpdateOperator(e.ctx, "alice", koshin.OperatorUpdate{TOTPSecret: &secret})
	must(t, err)
	if _, ok := o.PendingTOTP(now); ok || string(o.TOTPSecret) != string(secret) {
		t.Fatalf("after confirmation: %+v", o)
	}
	if o, err = e.s.FindOperatorByName(e.ctx, "alice"); err != nil || len(o.TOTPPending) != 0 || o.TOTPLastStep != 2009 {
		t.Fatalf("stored after confirmation: %+v, %v", o, err)
	}
}
