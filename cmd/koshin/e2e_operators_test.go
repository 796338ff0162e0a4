package main

import (
	"encoding/base32"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/totp"
)

// TestOperatorsTokensAndTOTP walks an operator's life: created by an
// administrator with a generated password, API tokens no stronger than
// their role, a password change that proves the old one, a TOTP second
// factor with replay protection (CCDS ORG08), demotion and deletion taking
// effect on existing credentials at once, and logout.
func TestOperatorsTokensAndTOTP(t *testing.T) {
	e := newE2E(t, e2eOpts{})
	admin := e.adminToken()
	var created struct {
		Operator struct{ Name, Role string }
		Password string
	}
	e.must(e.call("POST", "/api/v1/operators", admin, map[string]string{"name": "alice", "role": "operator"}), 201).decode(t, &created)
	if len(created.Password) < 32 {
		t.Fatalf("generated password %q", created.Password)
	}
	e.must(e.call("POST", "/api/v1/operators", admin, map[string]string{"name": "bob", "role": "viewer", "password": "short"}), 400)
	alice := e.login("alice", created.Password)

	e.must(e.call("POST", "/api/v1/tokens", alice, map[string]string{"name": "ci", "role": "admin"}), 403)
	var tok struct{ Token string }
	e.must(e.call("POST", "/api/v1/tokens", alice, map[string]string{"name": "ci", "role": "viewer"}), 201).decode(t, &tok)
	e.must(e.call("GET", "/api/v1/devices", tok.Token, nil), 200)
	e.must(e.call("POST", "/api/v1/enrollment-tokens", tok.Token, map[string]any{}), 403)
	e.must(e.call("POST", "/api/v1/tokens", tok.Token, map[string]string{"name": "child"}), 403) // tokens cannot breed
	var toks struct{ Items []struct{ Kind string } }
	e.must(e.call("GET", "/api/v1/tokens", alice, nil), 200).decode(t, &toks)
	if len(toks.Items) != 2 {
		t.Fatalf("tokens: %+v", toks)
	}

	newPW := "a brand new passphrase for her"
	e.must(e.call("PUT", "/api/v1/me/password", alice, map[string]string{"current": "wrong-password-here", "new": newPW}), 403)
	e.must(e.call("PUT", "/api/v1/me/password", alice, map[string]string{"current": created.Password, "new": "tiny"}), 400)
	e.must(e.call("PUT", "/api/v1/me/password", alice, map[string]string{"current": created.Password, "new": newPW}), 204)
	e.must(e.call("POST", "/api/v1/sessions", "", map[string]string{"name": "alice", "password": created.Password}), 401)
	alice = e.login("alice", newPW)

	e.enrollTOTP(alice)
	a := e.call("POST", "/api/v1/sessions", "", map[string]string{"name": "alice", "password": newPW})
	if a.Status != 401 || !strings.Contains(string(a.Body), "one-time code is required") {
		t.Fatalf("login without code: %d %s", a.Status, a.Body)
	}

	e.must(e.call("PATCH", "/api/v1/operators/alice", admin, map[string]string{"role": "viewer"}), 200)
	e.must(e.call("GET", "/api/v1/me", alice, nil), 401) // her operator session no longer matches her role
	e.must(e.call("GET", "/api/v1/devices", tok.Token, nil), 200)

	e.must(e.call("DELETE", "/api/v1/operators/root-admin", admin, nil), 409) // the last administrator
	e.must(e.call("DELETE", "/api/v1/operators/alice", admin, nil), 204)
	e.must(e.call("GET", "/api/v1/devices", tok.Token, nil), 401)

	e.must(e.call("DELETE", "/api/v1/sessions/current", admin, nil), 204)
	e.must(e.call("GET", "/api/v1/me", admin, nil), 401)

	admin = e.adminToken()
	var audit struct {
		Items []struct{ Action, Result string }
	}
	e.must(e.call("GET", "/api/v1/audit?limit=1000", admin, nil), 200).decode(t, &audit)
	seen := map[string]bool{}
	for _, a := range audit.Items {
		seen[a.Action+" "+a.Result] = true
	}
	for _, want := range []string{"operator.create ok", "token.create ok", "token.create denied",
		"operator.password ok", "operator.reauthenticate denied", "operator.totp.enable ok", "operator.update ok",
		"operator.delete ok", "operator.delete failed", "session.logout ok", "access.denied denied"} {
		if !seen[want] {
			t.Errorf("audit log lacks %q", want)
		}
	}
}

// enrollTOTP enrolls a second factor for the session's operator and checks
// that a code logs in once and only once.
func (e *e2e) enrollTOTP(session string) {
	t := e.t
	var offer struct{ Secret, URI string }
	e.must(e.call("POST", "/api/v1/me/totp", session, nil), 200).decode(t, &offer)
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(offer.Secret)
	mustDo(t, err)
	if !strings.HasPrefix(offer.URI, "otpauth://totp/") {
		t.Fatalf("uri %q", offer.URI)
	}
	e.must(e.call("POST", "/api/v1/me/totp/confirm", session, map[string]string{"code": "000000"}), 400)
	code, _ := totp.Code(secret, e.clock.Now(), totp.Default)
	e.must(e.call("POST", "/api/v1/me/totp/confirm", session, map[string]string{"code": code}), 204)

	var me struct{ Operator string }
	e.must(e.call("GET", "/api/v1/me", session, nil), 200).decode(t, &me)
	pw := "a brand new passphrase for her"
	login := func(code string) int {
		return e.call("POST", "/api/v1/sessions", "", map[string]string{"name": me.Operator, "password": pw, "totp": code}).Status
	}
	if st := login(code); st != 401 {
		t.Fatalf("the confirmation code logged in again: %d", st)
	}
	e.clock.Advance(30 * time.Second)
	code, _ = totp.Code(secret, e.clock.Now(), totp.Default)
	if st := login(code); st != 200 {
		t.Fatalf("fresh code: %d", st)
	}
	if st := login(code); st != 401 {
		t.Fatalf("replayed code: %d", st)
	}
}
