package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cliRun runs a koshin command line against the fixture's management API
// with an API token in the environment, as an operator's shell would.
func (e *e2e) cliRun(token string, args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	m := NewMain(&out, &errb)
	m.Now = e.clock.Now
	env := map[string]string{
		envServer: e.srv.ManagementURL(),
		envToken:  token,
		envCA:     filepath.Join(e.srv.Config.DataDir, pkiDir, "server-ca.crt"),
	}
	m.Getenv = func(k string) string { return env[k] }
	code := m.Run(args)
	return out.String(), errb.String(), code
}

func (e *e2e) cliOK(token string, args ...string) string {
	e.t.Helper()
	out, errs, code := e.cliRun(token, args...)
	if code != 0 {
		e.t.Fatalf("koshin %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

// TestCLIDeviceAndRollout drives enrollment and a rollout with the
// `koshin device` and `koshin rollout` commands and an API token.
func TestCLIDeviceAndRollout(t *testing.T) {
	e := newE2E(t, e2eOpts{}, e2eRelease{name: "fw-2.0", hw: []string{"board-a"}, counter: 2})
	session := e.adminToken()
	var tok struct{ Token string }
	e.must(e.call("POST", "/api/v1/tokens", session, map[string]string{"name": "cli", "role": "admin"}), 201).decode(t, &tok)
	api := tok.Token
	e.must(e.call("POST", "/api/v1/releases/import", api, nil), 200)

	if _, errs, code := e.cliRun("", "device", "token", "create"); code != 2 || !strings.Contains(errs, envToken) {
		t.Fatalf("without a token: %d %s", code, errs)
	}
	d1, d2 := e.newDevice("SN-1", "board-a"), e.newDevice("SN-2", "board-a")
	csv := e.writeFile("preauth.csv", []byte("serial,hardware_id,public_key\nSN-1,board-a,"+d1.publicKeyB64()+"\n"))
	if out := e.cliOK(api, "device", "preauthorize", "--csv", csv); !strings.Contains(out, "1 devices pre-authorised") {
		t.Fatalf("preauthorize: %s", out)
	}
	mustDo(t, d1.enroll(""))
	out := e.cliOK(api, "device", "token", "create", "--group", "lab", "--expires", "2h")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	mustDo(t, d2.enroll(lines[len(lines)-1]))
	d1.mustCheckIn()
	d2.mustCheckIn()
	if out := e.cliOK(api, "device", "list", "--query", "group:lab"); !strings.Contains(out, "SN-2") || strings.Contains(out, "SN-1") {
		t.Fatalf("device list: %s", out)
	}

	out = e.cliOK(api, "rollout", "create", "--release", "fw-2.0", "--all", "--phases", "1,100%",
		"--max-failures", "1", "--silence-timeout", "1h", "--manual")
	if !strings.Contains(out, "rollout 1 created") || !strings.Contains(out, "phase 2: 1 devices") {
		t.Fatalf("create: %s", out)
	}
	e.cliOK(api, "rollout", "start", "1")
	e.tick()
	if out := e.cliOK(api, "rollout", "status", "1"); !strings.Contains(out, "running") || !strings.Contains(out, "phase 1 of 2") {
		t.Fatalf("status: %s", out)
	}
	if _, errs, code := e.cliRun(api, "rollout", "advance", "1"); code != 1 || !strings.Contains(errs, "not finished") {
		t.Fatalf("advance of an unfinished phase: %d %s", code, errs)
	}
	if out := e.cliOK(api, "rollout", "pause", "1"); !strings.Contains(out, "paused") {
		t.Fatalf("pause: %s", out)
	}
	e.cliOK(api, "rollout", "resume", "1")
	e.clock.Advance(time.Minute)
	if out := e.cliOK(api, "rollout", "abort", "1", "--reason", "changed our minds"); !strings.Contains(out, "aborted") {
		t.Fatalf("abort: %s", out)
	}
	if out := e.cliOK(api, "rollout", "list"); !strings.Contains(out, fmt.Sprintf("%d", 1)) || !strings.Contains(out, "aborted") {
		t.Fatalf("list: %s", out)
	}
}
