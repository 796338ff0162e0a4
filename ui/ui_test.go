package ui_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/compliance"
	"github.com/koshin-ota/koshin/ui"
)

// runningRollout creates and starts a rollout of fw-2.0 over the fixture's
// devices directly in the store.
func (fx *fixture) runningRollout(name string) *koshin.Rollout {
	fx.t.Helper()
	ctx := context.Background()
	r := &koshin.Rollout{Name: name, ReleaseName: "fw-2.0", Selector: koshin.Selector{All: true},
		Phases: []koshin.Phase{{Count: 1}, {Percent: 100}}, Threshold: koshin.Threshold{MaxFailures: 2},
		SilenceTimeout: time.Hour, Mode: koshin.ModeAutomatic, CreatedBy: "operator:admin-1"}
	must(fx.t, fx.store.CreateRollout(ctx, r))
	r, err := fx.store.StartRollout(ctx, r.ID, fx.clock.Now())
	must(fx.t, err)
	return r
}

func (fx *fixture) fleet() {
	fx.release("fw-2.0", "board-a")
	for i := range 3 {
		fx.enroll(fmt.Sprintf("SN-%d", i), "board-a", inventory("1.0"), "region=eu")
	}
}

func TestSignInShowsEveryPage(t *testing.T) {
	fx := newFixture(t)
	fx.fleet()
	ro := fx.runningRollout("first")
	b := fx.browser()
	if p := b.get("/ui/"); p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Location, "/ui/login") {
		t.Fatalf("unauthenticated overview: %d %s", p.Status, p.Location)
	}
	if p := b.get("/"); p.Status != http.StatusSeeOther || p.Location != "/ui/" {
		t.Fatalf("root: %d %s", p.Status, p.Location)
	}
	b.signIn("admin-1")
	for path, want := range map[string]string{
		"/ui/":                                "Fleet overview",
		"/ui/devices":                         "SN-2",
		"/ui/devices?version=1.0":             "SN-1",
		"/ui/releases":                        "fw-2.0",
		"/ui/rollouts":                        "first",
		"/ui/rollouts/new":                    "Create rollout",
		fmt.Sprintf("/ui/rollouts/%d", ro.ID): `id="pause"`,
		"/ui/approvals":                       "No approval-mode rollout",
		"/ui/audit":                           "The hash chain verifies",
		"/ui/compliance":                      "No product profile is configured",
	} {
		p := b.get(path)
		if p.Status != http.StatusOK || !strings.Contains(p.Body, want) {
			t.Errorf("%s: %d, want %q in %.300s", path, p.Status, want, p.Body)
		}
		csp := p.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP %q", path, csp)
		}
	}
	dev, err := fx.store.FindDeviceBySerial(context.Background(), "SN-0")
	must(t, err)
	if p := b.get("/ui/devices/" + dev.ID); p.Status != 200 || !strings.Contains(p.Body, "Installed software") {
		t.Errorf("device page: %d", p.Status)
	}
}

func TestSessionCookieIsLockedDown(t *testing.T) {
	fx := newFixture(t)
	b := fx.browser()
	login := b.get("/ui/login")
	p := b.post("/ui/login", url.Values{"csrf": {formToken(t, login)}, "name": {"admin-1"}, "password": {fx.pw["admin-1"]}})
	var found bool
	for _, c := range p.Header.Values("Set-Cookie") {
		if !strings.HasPrefix(c, "__Host-koshin-session=") {
			continue
		}
		found = true
		for _, attr := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
			if !strings.Contains(c, attr) {
				t.Errorf("session cookie %q lacks %s", c, attr)
			}
		}
		if strings.Contains(c, "Domain=") {
			t.Errorf("session cookie %q names a domain", c)
		}
	}
	if !found {
		t.Fatalf("no session cookie: %v", p.Header)
	}
}

func TestSignInUsesTheAPIsRules(t *testing.T) {
	fx := newFixture(t)
	b := fx.browser()
	token := formToken(t, b.get("/ui/login"))
	p := b.post("/ui/login", url.Values{"csrf": {token}, "name": {"admin-1"}, "password": {"wrong-password"}})
	if !strings.Contains(p.Body, `id="login-error"`) || !strings.Contains(p.Body, "Invalid name or password") {
		t.Fatalf("wrong password: %d %.300s", p.Status, p.Body)
	}
	// No form token from this site: refused before the API is asked.
	other := fx.browser()
	p = other.post("/ui/login", url.Values{"csrf": {token}, "name": {"admin-1"}, "password": {fx.pw["admin-1"]}})
	if !strings.Contains(p.Body, "form expired") || strings.Contains(strings.Join(p.Header.Values("Set-Cookie"), ";"), "koshin-session=k") {
		t.Fatalf("login without the form cookie: %d", p.Status)
	}
	// The audit log has the API's record of the failure.
	es, err := fx.store.FindAuditEntries(context.Background(), koshin.AuditFilter{Action: "session.login"})
	must(t, err)
	if len(es) != 1 || es[0].Result != koshin.AuditDenied {
		t.Fatalf("audit of the failed login: %+v", es)
	}
}

func TestFormsWithoutCSRFTokenAreRefused(t *testing.T) {
	fx := newFixture(t)
	fx.fleet()
	ro := fx.runningRollout("csrf")
	b := fx.browser()
	token := b.signIn("admin-1")
	path := fmt.Sprintf("/ui/rollouts/%d/pause", ro.ID)
	for name, form := range map[string]url.Values{
		"missing": {},
		"wrong":   {"csrf": {strings.Repeat("0", 64)}},
		"other":   {"csrf": {formToken(t, fx.browser().get("/ui/login"))}},
	} {
		if p := b.post(path, form); p.Status != http.StatusForbidden || !strings.Contains(p.Body, "did not come from this site") {
			t.Errorf("%s token: %d %s %.200s", name, p.Status, p.Location, p.Body)
		}
	}
	// A right token from another site's page (Origin) is refused too.
	req, _ := http.NewRequest("POST", fx.srv.URL+path, strings.NewReader(url.Values{"csrf": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if p := b.do(req); p.Status != http.StatusForbidden {
		t.Errorf("cross-origin post: %d", p.Status)
	}
	if r, _ := fx.store.FindRolloutByID(context.Background(), ro.ID); r.State != koshin.RolloutRunning {
		t.Fatalf("rollout %s after refused posts", r.State)
	}
	if p := b.post(path, url.Values{"csrf": {token}}); p.Status != http.StatusSeeOther {
		t.Fatalf("pause with the token: %d %.300s", p.Status, p.Body)
	}
	if r, _ := fx.store.FindRolloutByID(context.Background(), ro.ID); r.State != koshin.RolloutPaused {
		t.Fatalf("rollout %s after pause", r.State)
	}
	es, err := fx.store.FindAuditEntries(context.Background(), koshin.AuditFilter{Action: "rollout.pause"})
	must(t, err)
	if len(es) != 1 || es[0].Principal != "operator:admin-1" {
		t.Fatalf("pause audit: %+v", es)
	}
}

func TestViewerSeesNoActionsAndForgedPostsFail(t *testing.T) {
	fx := newFixture(t)
	fx.fleet()
	ro := fx.runningRollout("roles")
	v := fx.browser()
	token := v.signIn("viewer-1")
	page := v.get(fmt.Sprintf("/ui/rollouts/%d", ro.ID))
	for _, button := range []string{`id="pause"`, `id="abort"`, `id="advance"`, `/abort"`} {
		if strings.Contains(page.Body, button) {
			t.Errorf("viewer's rollout page has %s", button)
		}
	}
	if !strings.Contains(page.Body, `id="rollout-state"`) {
		t.Fatal("viewer cannot see the rollout")
	}
	for path, absent := range map[string]string{"/ui/rollouts": "New rollout", "/ui/releases": "Import from", "/ui/": `href="/ui/audit"`} {
		if p := v.get(path); strings.Contains(p.Body, absent) {
			t.Errorf("viewer's %s shows %q", path, absent)
		}
	}
	// Forged: the viewer's own valid token, a route the role table refuses.
	p := v.post(fmt.Sprintf("/ui/rollouts/%d/pause", ro.ID), url.Values{"csrf": {token}})
	if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "Your role does not allow this") {
		t.Fatalf("viewer pause: %d %.300s", p.Status, p.Body)
	}
	if r, _ := fx.store.FindRolloutByID(context.Background(), ro.ID); r.State != koshin.RolloutRunning {
		t.Fatalf("viewer paused the rollout: %s", r.State)
	}
	if p := v.get("/ui/audit"); p.Status != http.StatusForbidden {
		t.Errorf("viewer audit page: %d", p.Status)
	}
	es, err := fx.store.FindAuditEntries(context.Background(), koshin.AuditFilter{Action: "access.denied"})
	must(t, err)
	if len(es) != 1 || es[0].Principal != "operator:viewer-1" {
		t.Fatalf("denied pause not audited: %+v", es)
	}
	// An auditor reads the audit log; a release manager may import releases
	// but not pause rollouts.
	a := fx.browser()
	a.signIn("auditor-1")
	if p := a.get("/ui/audit"); p.Status != http.StatusOK {
		t.Errorf("auditor audit page: %d", p.Status)
	}
	rm := fx.browser()
	rm.signIn("release-manager-1")
	if p := rm.get("/ui/releases"); !strings.Contains(p.Body, "Import from") {
		t.Error("release manager's releases page lacks the import button")
	}
	if p := rm.get(fmt.Sprintf("/ui/rollouts/%d", ro.ID)); strings.Contains(p.Body, `id="pause"`) {
		t.Error("release manager sees a pause button")
	}
}

func TestHostileDeviceDataIsEscaped(t *testing.T) {
	fx := newFixture(t)
	fx.release("fw-2.0", "board-a")
	inv := inventory(`<script>alert("v")</script>`)
	inv.Settings.NotifyTarget = `"><img src=x onerror=alert(1)>`
	inv.AgentVersion = `</title><script>x()</script>`
	d := fx.enroll("SN-EVIL", "board-a", inv, "x=b+c")
	_, err := fx.store.RecordEvent(context.Background(), &koshin.Event{DeviceID: d.ID, EventID: "e1", Type: koshin.EventFailed,
		Reason: `<iframe src=//evil>`, Detail: `<svg onload=alert(2)>`}, fx.clock.Now())
	must(t, err)
	b := fx.browser()
	b.signIn("admin-1")
	hostile := []string{`<script>alert`, `<img src=x`, `<iframe`, `<svg onload`, `</title><script>`}
	for _, path := range []string{"/ui/", "/ui/devices", "/ui/devices/" + d.ID, "/ui/devices?q=" + url.QueryEscape(`<script>q</script>`)} {
		p := b.get(path)
		for _, h := range hostile {
			if strings.Contains(p.Body, h) {
				t.Errorf("%s contains unescaped %q", path, h)
			}
		}
		if strings.Contains(p.Body, "<script>q") {
			t.Errorf("%s reflects the query unescaped", path)
		}
	}
	if p := b.get("/ui/devices/" + d.ID); !strings.Contains(p.Body, "&lt;script&gt;alert(&#34;v&#34;)&lt;/script&gt;") {
		t.Errorf("device page does not show the escaped version")
	}
}

func TestTagsAreRejectedByTheAPIWithAMessage(t *testing.T) {
	fx := newFixture(t)
	d := fx.enroll("SN-1", "board-a", inventory("1.0"))
	b := fx.browser()
	token := b.signIn("operator-1")
	p := b.post("/ui/devices/"+d.ID, url.Values{"csrf": {token}, "group": {"lab"}, "tags": {"ok=1, <bad>"}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("update: %d %.300s", p.Status, p.Body)
	}
	p = b.get(p.Location)
	if !strings.Contains(p.Body, `class="flash flash-error"`) || !strings.Contains(p.Body, "Tag must be") {
		t.Fatalf("no visible error after a bad tag: %.500s", p.Body)
	}
	if got, _ := fx.store.FindDeviceByID(context.Background(), d.ID); got.Group != "" {
		t.Fatalf("device changed despite the error: %+v", got)
	}
}

func TestRolloutFormRejectsBadInput(t *testing.T) {
	fx := newFixture(t)
	fx.fleet()
	b := fx.browser()
	token := b.signIn("operator-1")
	base := url.Values{"csrf": {token}, "release": {"fw-2.0"}, "target": {"all"}, "phases": {"10%, 100%"},
		"max_failures": {"1"}, "silence": {"1h"}, "mode": {"automatic"}, "start": {"yes"}}
	for name, tc := range map[string]struct {
		key, value, msg string
	}{
		"phase":     {"phases", "10%, lots", `&#34;lots&#34; is neither a percentage`},
		"shrinking": {"phases", "50%, 10%", "must not shrink"},
		"silence":   {"silence", "forever", "Silence timeout must be a duration"},
		"threshold": {"max_failures", "", "failure threshold"},
		"selection": {"target", "selection", "Name at least one group"},
		"release":   {"release", "fw-9", "not"},
	} {
		form := url.Values{}
		for k, v := range base {
			form[k] = v
		}
		form.Set(tc.key, tc.value)
		if name == "threshold" {
			form.Del("max_failure_percent")
		}
		p := b.post("/ui/rollouts", form)
		if !strings.Contains(p.Body, `id="form-error"`) || !strings.Contains(p.Body, tc.msg) {
			t.Errorf("%s: %d, want a visible %q: %.400s", name, p.Status, tc.msg, extract(p.Body, "form-error"))
		}
		if !strings.Contains(p.Body, `value="`+form.Get("phases")+`"`) {
			t.Errorf("%s: the form did not keep the phases", name)
		}
	}
	rs, err := fx.store.FindRollouts(context.Background(), koshin.RolloutFilter{})
	must(t, err)
	if len(rs) != 0 {
		t.Fatalf("bad forms created %d rollouts", len(rs))
	}
	p := b.post("/ui/rollouts", base)
	if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Location, "/ui/rollouts/") {
		t.Fatalf("good form: %d %.300s", p.Status, extract(p.Body, "form-error"))
	}
	if p := b.get(p.Location); !strings.Contains(p.Body, "created and started") || !strings.Contains(p.Body, `id="pause"`) {
		t.Fatalf("rollout page after create: %.300s", p.Body)
	}
}

func extract(body, id string) string {
	i := strings.Index(body, `id="`+id+`"`)
	if i < 0 {
		return "(no " + id + ")"
	}
	return body[i:min(len(body), i+300)]
}

func TestLiveStreamSendsRolloutFragments(t *testing.T) {
	fx := newFixture(t)
	fx.fleet()
	ro := fx.runningRollout("live")
	b := fx.browser()
	b.signIn("viewer-1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/ui/rollouts/%d/live", fx.srv.URL, ro.ID), nil)
	resp, err := b.c.Do(req)
	must(t, err)
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	buf := make([]byte, 64<<10)
	var got strings.Builder
	for !strings.Contains(got.String(), "\n\n") || !strings.Contains(got.String(), "event: rollout-live") {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("stream ended: %v: %s", err, got.String())
		}
	}
	if !strings.Contains(got.String(), `data: <p class="status"`) || strings.Contains(got.String(), `id="pause"`) {
		t.Fatalf("fragment: %.500s", got.String())
	}
}

func TestLiveWithoutSessionTellsThePageToReload(t *testing.T) {
	fx := newFixture(t)
	p := fx.browser().get("/ui/fleet/live")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "event: signed-out") {
		t.Fatalf("live without session: %d %q", p.Status, p.Body)
	}
}

func TestSignOutEndsTheSession(t *testing.T) {
	fx := newFixture(t)
	b := fx.browser()
	token := b.signIn("admin-1")
	if p := b.post("/ui/logout", url.Values{"csrf": {token}}); p.Status != http.StatusSeeOther || p.Location != "/ui/login" {
		t.Fatalf("sign out: %d %s", p.Status, p.Location)
	}
	if p := b.get("/ui/"); p.Status != http.StatusSeeOther {
		t.Fatalf("overview after sign-out: %d", p.Status)
	}
	ts, err := fx.store.FindAPITokens(context.Background(), "admin-1")
	must(t, err)
	if len(ts) != 0 {
		t.Fatalf("session token survives sign-out: %+v", ts)
	}
}

func TestStaticFilesAreEmbedded(t *testing.T) {
	fx := newFixture(t)
	b := fx.browser()
	for file, ctype := range map[string]string{"htmx.min.js": "text/javascript", "live.js": "text/javascript", "style.css": "text/css"} {
		p := b.get("/ui/static/" + file)
		if p.Status != http.StatusOK || !strings.HasPrefix(p.Header.Get("Content-Type"), ctype) || len(p.Body) < 100 {
			t.Errorf("%s: %d %s %d bytes", file, p.Status, p.Header.Get("Content-Type"), len(p.Body))
		}
	}
	if p := b.get("/ui/static/nope.js"); p.Status != http.StatusNotFound {
		t.Errorf("missing static file: %d", p.Status)
	}
}

func TestCompliancePageRendersTheConfiguredProfile(t *testing.T) {
	fx := newFixture(t)
	fx.fleet()
	f, err := os.Open(filepath.Join("..", "compliance", "testdata", "profile.yaml"))
	must(t, err)
	defer f.Close()
	p, err := compliance.LoadProfile(f)
	must(t, err)
	fx.ui.Compliance = &ui.Compliance{Profile: p, Path: "profile.yaml"}
	b := fx.browser()
	b.signIn("viewer-1")
	page := b.get("/ui/compliance")
	if page.Status != 200 || !strings.Contains(page.Body, `href="/ui/compliance/en303645"`) || strings.Contains(page.Body, `class="error"`) {
		t.Fatalf("compliance page: %d %.600s", page.Status, extract(page.Body, "compliance-table"))
	}
	rep := b.get("/ui/compliance/en303645")
	if rep.Status != 200 || !strings.Contains(rep.Body, "3 devices, observed") || !strings.Contains(rep.Body, "3 of 3 devices (100.0 %) have automatic updates on") {
		t.Fatalf("report: %d %.300s", rep.Status, rep.Body)
	}
	if csp := rep.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script") {
		t.Errorf("report CSP %q", csp)
	}
	if js := b.get("/ui/compliance/ccds?format=json"); js.Status != 200 || !strings.HasPrefix(js.Header.Get("Content-Type"), "application/json") {
		t.Errorf("json report: %d %s", js.Status, js.Header.Get("Content-Type"))
	}
	if bad := b.get("/ui/compliance/iso9001"); bad.Status != http.StatusNotFound {
		t.Errorf("unknown standard: %d", bad.Status)
	}
}

func TestApprovalQueue(t *testing.T) {
	fx := newFixture(t)
	fx.fleet()
	ctx := context.Background()
	r := &koshin.Rollout{ReleaseName: "fw-2.0", Selector: koshin.Selector{All: true}, Phases: []koshin.Phase{{Percent: 100}},
		Threshold: koshin.Threshold{MaxFailures: 1}, SilenceTimeout: time.Hour, Mode: koshin.ModeApproval, CreatedBy: "operator:admin-1"}
	must(t, fx.store.CreateRollout(ctx, r))
	_, err := fx.store.StartRollout(ctx, r.ID, fx.clock.Now())
	must(t, err)
	_, err = fx.store.AssignNext(ctx, r.ID, 0, 10, fx.clock.Now())
	must(t, err)
	v := fx.browser()
	v.signIn("viewer-1")
	if p := v.get("/ui/approvals"); !strings.Contains(p.Body, "phase 1, waiting since") || strings.Contains(p.Body, "Approve all") {
		t.Fatalf("viewer's approval queue: %.600s", p.Body)
	}
	b := fx.browser()
	token := b.signIn("operator-1")
	p := b.get("/ui/approvals")
	if !strings.Contains(p.Body, "Approve all 3 waiting devices") {
		t.Fatalf("operator's approval queue: %.600s", p.Body)
	}
	dev, err := fx.store.FindDeviceBySerial(ctx, "SN-1")
	must(t, err)
	if p := b.get("/ui/devices/" + dev.ID); !strings.Contains(p.Body, `id="approve-device"`) {
		t.Fatal("device page lacks the approve button")
	}
	p = b.post(fmt.Sprintf("/ui/rollouts/%d/approve", r.ID), url.Values{"csrf": {token}, "device": {dev.ID}, "back": {"/ui/approvals"}})
	if p.Status != http.StatusSeeOther || p.Location != "/ui/approvals" {
		t.Fatalf("approve one: %d %s", p.Status, p.Location)
	}
	if p := b.get("/ui/approvals"); !strings.Contains(p.Body, "Approved.") || !strings.Contains(p.Body, "Approve all 2 waiting devices") {
		t.Fatalf("after approving one: %.600s", p.Body)
	}
	p = b.post(fmt.Sprintf("/ui/rollouts/%d/approve", r.ID), url.Values{"csrf": {token}, "all": {"yes"}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("approve all: %d", p.Status)
	}
	as, err := fx.store.FindAssignments(ctx, koshin.AssignmentFilter{RolloutID: r.ID, State: koshin.AssignmentAwaitingApproval})
	must(t, err)
	if len(as) != 0 {
		t.Fatalf("%d devices still wait", len(as))
	}
}
