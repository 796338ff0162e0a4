package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

func (e *env) createOperator(t *testing.T, name string, role koshin.Role) *koshin.Operator {
	t.Helper()
	o := &koshin.Operator{Name: name, Role: role, PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"}
	must(t, e.s.CreateOperator(e.ctx, o))
	return o
}

// testOperators: no duplicates, role changes, and the last administrator
// can be neither demoted nor deleted (there is no default account to fall
// back on).
func testOperators(t *testing.T, e *env) {
	admin := e.createOperator(t, "alice", koshin.RoleAdmin)
	e.createOperator(t, "bob", koshin.RoleOperator)
	e.createOperator(t, "carol", koshin.RoleAuditor)
	wantCode(t, e.s.CreateOperator(e.ctx, &koshin.Operator{Name: "alice", Role: koshin.RoleViewer, PasswordHash: "x"}), koshin.ECONFLICT)
	wantCode(t, e.s.CreateOperator(e.ctx, &koshin.Operator{Name: "dave", Role: "root", PasswordHash: "x"}), koshin.EINVALID)
	got, err := e.s.FindOperatorByName(e.ctx, "alice")
	must(t, err)
	if got.PasswordHash != admin.PasswordHash || got.Role != koshin.RoleAdmin || got.CreatedAt.IsZero() {
		t.Fatalf("found %+v", got)
	}
	_, err = e.s.FindOperatorByName(e.ctx, "mallory")
	wantCode(t, err, koshin.ENOTFOUND)
	list, err := e.s.FindOperators(e.ctx, koshin.OperatorFilter{Role: koshin.RoleAuditor})
	must(t, err)
	if len(list) != 1 || list[0].Name != "carol" {
		t.Fatalf("auditors = %v", list)
	}
	page, err := e.s.FindOperators(e.ctx, koshin.OperatorFilter{After: "alice", Limit: 1})
	must(t, err)
	if len(page) != 1 || page[0].Name != "bob" {
		t.Fatalf("page = %v", page)
	}

	viewer := koshin.RoleViewer
	_, err = e.s.UpdateOperator(e.ctx, "alice", koshin.OperatorUpdate{Role: &viewer})
	wantCode(t, err, koshin.ECONFLICT)
	wantCode(t, e.s.DeleteOperator(e.ctx, "alice"), koshin.ECONFLICT)
	secret, hash := []byte("0123456789abcdefghij"), "$argon2id$new"
	upd, err := e.s.UpdateOperator(e.ctx, "bob", koshin.OperatorUpdate{PasswordHash: &hash, TOTPSecret: &secret})
	must(t, err)
	if upd.PasswordHash != hash || string(upd.TOTPSecret) != string(secret) {
		t.Fatalf("updated %+v", upd)
	}
	short := []byte("short")
	_, err = e.s.UpdateOperator(e.ctx, "bob", koshin.OperatorUpdate{TOTPSecret: &short})
	wantCode(t, err, koshin.EINVALID)
	adminRole := koshin.RoleAdmin
	_, err = e.s.UpdateOperator(e.ctx, "bob", koshin.OperatorUpdate{Role: &adminRole})
	must(t, err)
	_, err = e.s.UpdateOperator(e.ctx, "alice", koshin.OperatorUpdate{Role: &viewer})
	must(t, err) // bob is an administrator now
	must(t, e.s.DeleteOperator(e.ctx, "carol"))
	wantCode(t, e.s.DeleteOperator(e.ctx, "carol"), koshin.ENOTFOUND)
}

// testLockout: failures count atomically and lock with a growing delay
// (EN 303 645 5.1-5, CCDS STS13); success clears the lock.
func testLockout(t *testing.T, e *env) {
	e.createOperator(t, "alice", koshin.RoleAdmin)
	p := koshin.LockoutPolicy{FreeAttempts: 3, BaseDelay: time.Second, MaxDelay: 4 * time.Second}
	now := e.clock.Now()
	for i, wantDelay := range []time.Duration{0, 0, 1, 2, 4, 4} {
		o, err := e.s.RecordLoginFailure(e.ctx, "alice", p, now)
		must(t, err)
		if o.FailedLogins != i+1 {
			t.Fatalf("failure %d counted as %d", i+1, o.FailedLogins)
		}
		if wantDelay == 0 {
			if !o.LockedUntil.IsZero() {
				t.Fatalf("locked after %d failures", i+1)
			}
			continue
		}
		equalTime(t, fmt.Sprintf("locked until after %d failures", i+1), o.LockedUntil, now.Add(wantDelay*time.Second))
		if !o.Locked(now) || o.Locked(now.Add(wantDelay*time.Second)) {
			t.Fatalf("Locked wrong after %d failures", i+1)
		}
	}
	o, err := e.s.RecordLoginSuccess(e.ctx, "alice", now)
	must(t, err)
	if o.FailedLogins != 0 || !o.LockedUntil.IsZero() || o.Locked(now) {
		t.Fatalf("after success %+v", o)
	}
	equalTime(t, "last login", o.LastLoginAt, now)

	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if _, err := e.s.RecordLoginFailure(e.ctx, "alice", p, now); err != nil {
				t.Errorf("RecordLoginFailure: %v", err)
			}
		})
	}
	wg.Wait()
	if o, _ := e.s.FindOperatorByName(e.ctx, "alice"); o.FailedLogins != 10 {
		t.Fatalf("concurrent failures counted %d, want 10", o.FailedLogins)
	}
	_, err = e.s.RecordLoginFailure(e.ctx, "mallory", p, now)
	wantCode(t, err, koshin.ENOTFOUND)
	_, err = e.s.RecordLoginFailure(e.ctx, "alice", koshin.LockoutPolicy{}, now)
	wantCode(t, err, koshin.EINVALID)
	_, err = e.s.RecordLoginSuccess(e.ctx, "mallory", now)
	wantCode(t, err, koshin.ENOTFOUND)
}

func newAPIToken(e *env, operator string, role koshin.Role, ttl time.Duration) (string, *koshin.APIToken) {
	secret := koshin.NewSecret()
	return secret, &koshin.APIToken{Operator: operator, Name: "ci", Role: role, Hash: koshin.HashSecret(secret),
		ExpiresAt: e.clock.Now().Add(ttl)}
}

// testAPITokens: tokens authenticate by hash until they expire, never
// carry more power than their owner, and die with their owner.
func testAPITokens(t *testing.T, e *env) {
	e.createOperator(t, "alice", koshin.RoleAdmin)
	e.createOperator(t, "bob", koshin.RoleOperator)
	secret, tok := newAPIToken(e, "bob", koshin.RoleOperator, time.Hour)
	must(t, e.s.CreateAPIToken(e.ctx, tok))
	if tok.ID == 0 {
		t.Fatal("token has no ID")
	}
	dupHash := *tok
	wantCode(t, e.s.CreateAPIToken(e.ctx, &dupHash), koshin.ECONFLICT)
	got, err := e.s.FindAPITokenByHash(e.ctx, koshin.HashSecret(secret), e.clock.Now())
	must(t, err)
	if got.ID != tok.ID || got.Operator != "bob" || got.Role != koshin.RoleOperator {
		t.Fatalf("authenticated %+v", got)
	}
	_, err = e.s.FindAPITokenByHash(e.ctx, koshin.HashSecret(secret), e.clock.Now().Add(time.Hour))
	wantCode(t, err, koshin.EUNAUTHORIZED)
	_, err = e.s.FindAPITokenByHash(e.ctx, koshin.HashSecret("guess"), e.clock.Now())
	wantCode(t, err, koshin.EUNAUTHORIZED)
	_, err = e.s.FindAPITokenByHash(e.ctx, []byte("short"), e.clock.Now())
	wantCode(t, err, koshin.EUNAUTHORIZED)

	_, escalate := newAPIToken(e, "bob", koshin.RoleAdmin, time.Hour)
	wantCode(t, e.s.CreateAPIToken(e.ctx, escalate), koshin.EFORBIDDEN)
	_, forever := newAPIToken(e, "bob", koshin.RoleViewer, koshin.MaxAPITokenLifetime+time.Hour)
	wantCode(t, e.s.CreateAPIToken(e.ctx, forever), koshin.EINVALID)
	_, orphan := newAPIToken(e, "mallory", koshin.RoleViewer, time.Hour)
	wantCode(t, e.s.CreateAPIToken(e.ctx, orphan), koshin.ENOTFOUND)

	// Demoting the owner disables the token's excess power.
	viewer := koshin.RoleViewer
	_, err = e.s.UpdateOperator(e.ctx, "bob", koshin.OperatorUpdate{Role: &viewer})
	must(t, err)
	_, err = e.s.FindAPITokenByHash(e.ctx, koshin.HashSecret(secret), e.clock.Now())
	wantCode(t, err, koshin.EUNAUTHORIZED)

	list, err := e.s.FindAPITokens(e.ctx, "bob")
	must(t, err)
	if len(list) != 1 || list[0].ID != tok.ID {
		t.Fatalf("tokens = %+v", list)
	}
	must(t, e.s.DeleteAPIToken(e.ctx, tok.ID))
	wantCode(t, e.s.DeleteAPIToken(e.ctx, tok.ID), koshin.ENOTFOUND)
	_, err = e.s.FindAPITokens(e.ctx, "mallory")
	wantCode(t, err, koshin.ENOTFOUND)
	testTokenLimits(t, e)
}

func testTokenLimits(t *testing.T, e *env) {
	var last string
	for range koshin.MaxAPITokensPerOperator {
		secret, tok := newAPIToken(e, "alice", koshin.RoleViewer, time.Hour)
		must(t, e.s.CreateAPIToken(e.ctx, tok))
		last = secret
	}
	_, tok := newAPIToken(e, "alice", koshin.RoleViewer, time.Hour)
	wantCode(t, e.s.CreateAPIToken(e.ctx, tok), koshin.ETOOMANY)
	e.createOperator(t, "zed", koshin.RoleAdmin)
	must(t, e.s.DeleteOperator(e.ctx, "alice"))
	_, err := e.s.FindAPITokenByHash(e.ctx, koshin.HashSecret(last), e.clock.Now())
	wantCode(t, err, koshin.EUNAUTHORIZED)
}
