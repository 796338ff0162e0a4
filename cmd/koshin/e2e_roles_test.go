package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/httpapi"
)

var allRoles = []koshin.Role{koshin.RoleAdmin, koshin.RoleReleaseManager, koshin.RoleOperator, koshin.RoleViewer, koshin.RoleAuditor}

// policy is one operation's documented access policy.
type policy struct {
	Roles   []koshin.Role `yaml:"x-koshin-roles"`
	Public  bool          `yaml:"x-koshin-public"`
	Session bool          `yaml:"x-koshin-session"`
	Device  bool          `yaml:"x-koshin-device"`
}

// documentedPolicy reads docs/openapi.yaml into "METHOD PATH" → policy.
func documentedPolicy(t *testing.T) map[string]policy {
	data, err := os.ReadFile("../../docs/openapi.yaml")
	mustDo(t, err)
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	mustDo(t, yaml.Unmarshal(data, &doc))
	out := map[string]policy{}
	for path, ops := range doc.Paths {
		for method, node := range ops {
			if method == "parameters" {
				continue
			}
			var p policy
			mustDo(t, node.Decode(&p))
			out[strings.ToUpper(method)+" "+path] = p
		}
	}
	return out
}

// TestRoleMatrixDocumented holds the route table (the policy the server
// enforces) and docs/openapi.yaml (the policy operators read) to each
// other, both ways.
func TestRoleMatrixDocumented(t *testing.T) {
	doc := documentedPolicy(t)
	seen := map[string]bool{}
	for _, rt := range httpapi.Routes() {
		key := rt.Method + " " + rt.Path
		seen[key] = true
		p, ok := doc[key]
		if !ok {
			t.Errorf("%s is not documented", key)
			continue
		}
		if p.Public != rt.Public || p.Session != rt.Session || !sameRoles(p.Roles, rt.Roles) {
			t.Errorf("%s: documented %+v, enforced %+v", key, p, rt)
		}
	}
	for key, p := range doc {
		if !seen[key] && !p.Device {
			t.Errorf("%s is documented but not served", key)
		}
	}
}

func sameRoles(a, b []koshin.Role) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestRoleMatrix tries every documented management endpoint with every
// role's session, every role's API token and no credentials (CCDS STS05,
// EN 303 645 5.5-5): the roles docs/openapi.yaml lists are never refused
// (their requests may still be invalid or name nothing), every other role
// gets 403, and a caller without credentials 401, except on the public
// routes. The expectations come from the documentation, not from the
// server's table, so a change to either alone fails here.
func TestRoleMatrix(t *testing.T) {
	e := newE2E(t, e2eOpts{config: func(c *ServerConfig) {
		c.Limits.LoginRate, c.Limits.LoginBurst = 1000, 10000
		c.Limits.AddrRate, c.Limits.AddrBurst = 1000, 10000
	}}, e2eRelease{name: "fw-2.0", hw: []string{"board-a"}, counter: 2})
	admin := e.adminToken()
	sessions, apiTokens, passwords := map[koshin.Role]string{}, map[koshin.Role]string{}, map[koshin.Role]string{}
	for _, role := range allRoles {
		name := "op-" + string(role)
		passwords[role] = hex.EncodeToString(randomBytes(12))
		e.must(e.call("POST", "/api/v1/operators", admin, map[string]string{"name": name, "role": string(role), "password": passwords[role]}), 201)
		sessions[role] = e.login(name, passwords[role])
		var tok struct{ Token string }
		e.must(e.call("POST", "/api/v1/tokens", sessions[role], map[string]string{"name": "ci"}), 201).decode(t, &tok)
		apiTokens[role] = tok.Token
	}
	for key, rt := range documentedPolicy(t) {
		if rt.Device {
			continue
		}
		method, rawPath, _ := strings.Cut(key, " ")
		t.Run(key, func(t *testing.T) {
			path := samplePath(rawPath)
			try := func(token string) int { return e.call(method, path, token, sampleBody(method)).Status }
			if st := try(""); rt.Public && (st == 401 || st == 403) || !rt.Public && st != 401 {
				t.Errorf("no credentials: %d", st)
			}
			if rt.Public {
				return
			}
			for _, role := range allRoles {
				allowed := slices.Contains(rt.Roles, role)
				token := sessions[role]
				if rawPath == "/api/v1/sessions/current" {
					token = e.login("op-"+string(role), passwords[role]) // a throwaway session to log out
				}
				checkAccess(t, "session of "+string(role), try(token), allowed)
				checkAccess(t, "API token of "+string(role), try(apiTokens[role]), allowed && !rt.Session)
			}
		})
	}
}

func checkAccess(t *testing.T, who string, status int, allowed bool) {
	t.Helper()
	refused := status == http.StatusUnauthorized || status == http.StatusForbidden
	switch {
	case allowed && refused:
		t.Errorf("%s refused with %d", who, status)
	case !allowed && status != http.StatusForbidden:
		t.Errorf("%s got %d, want 403", who, status)
	}
}

// samplePath fills path parameters with values that name nothing, so an
// allowed call reaches its handler without changing anything that exists.
func samplePath(p string) string {
	if strings.HasPrefix(p, "/api/v1/devices/") {
		p = strings.Replace(p, "{id}", strings.Repeat("0", 64), 1)
	}
	return strings.NewReplacer("{id}", "999999", "{name}", "nobody", "{serial}", "SN-none").Replace(p)
}

// sampleBody is an empty object for methods with a body: every handler
// validates it and answers 400 (or 404 for what the path names) when it
// is allowed to run at all.
func sampleBody(method string) any {
	if method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE" {
		return map[string]any{}
	}
	return nil
}

// TestNoDefaultCredentials: a freshly initialised and started server has
// no account at all, so no name and password works (EN 303 645 5.1-1, MIC
// terminal rules, JC-STAR S1.1-02); the first administrator comes from
// `koshin admin create`, whose random password is shown once.
func TestNoDefaultCredentials(t *testing.T) {
	e := newE2E(t, e2eOpts{noAdmin: true})
	ops, err := e.srv.Store.FindOperators(t.Context(), koshin.OperatorFilter{})
	if err != nil || len(ops) != 0 {
		t.Fatalf("operators after first start: %v %v", ops, err)
	}
	for _, c := range [][2]string{{"admin", "admin"}, {"admin", "password"}, {"root", "root"}, {"koshin", "koshin"}, {"admin", "koshinkoshin"}, {"admin", ""}} {
		if a := e.call("POST", "/api/v1/sessions", "", map[string]string{"name": c[0], "password": c[1]}); a.Status != 401 && a.Status != 400 {
			t.Errorf("login %s/%s: %d", c[0], c[1], a.Status)
		}
	}
	e.must(e.call("GET", "/api/v1/devices", "", nil), 401)

	var out, errb bytes.Buffer
	m := NewMain(&out, &errb)
	m.Now = e.clock.Now
	if code := m.Run([]string{"admin", "create", "--data-dir", e.srv.Config.DataDir, "--name", "first", "--role", "admin"}); code != 0 {
		t.Fatalf("admin create: %d %s", code, errb.String())
	}
	var pw string
	for _, line := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "password: "); ok {
			pw = v
		}
	}
	if len(pw) < 32 {
		t.Fatalf("no generated password in %q", out.String())
	}
	if tok := e.login("first", pw); !strings.HasPrefix(tok, "ksess_") {
		t.Fatalf("token %q", tok)
	}
	// A second run with the same name fails; nothing is overwritten.
	if code := m.Run([]string{"admin", "create", "--data-dir", e.srv.Config.DataDir, "--name", "first", "--role", "admin"}); code == 0 {
		t.Fatal("admin create overwrote an operator")
	}
	fmt.Fprint(&out, "")
}
