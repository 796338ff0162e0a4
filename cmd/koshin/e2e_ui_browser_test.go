package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/deviceapi"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// TestWebUIInChromium is issue 6's browser test: the real server
// (ServerMain on 127.0.0.1:0, SQLite in a temporary directory) and real
// headless Chromium driven by chromedp. An administrator signs in, sees a
// form refuse bad input with a visible message, creates and starts a
// rollout through the form, and watches it progress live (the page is not
// reloaded) while in-process devices update; pauses and resumes it. A
// viewer, in a separate browser context, sees no pause button, and a
// forged pause with the viewer's own session and form token is refused.
// No page writes a console error. Screenshots of the overview and the
// rollout page go to $KOSHIN_TEST_OUTPUT (or a temporary directory), and
// to docs/img with KOSHIN_UPDATE_DOCS=1.
func TestWebUIInChromium(t *testing.T) {
	if os.Getenv("KOSHIN_INTEGRATION") != "1" {
		t.Skip("browser test: set KOSHIN_INTEGRATION=1 (needs Debian's chromium at " + chromiumPath + ")")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skip("browser test: " + chromiumPath + " is missing; apt-get install chromium")
	}
	e := newE2E(t, e2eOpts{}, e2eRelease{name: "fw-2.0", hw: []string{"board-a"}, counter: 2})
	admin := e.adminToken()
	e.must(e.call("POST", "/api/v1/releases/import", admin, nil), 200)
	devs := e.enrollFleet(admin, 6)
	byID := map[string]*device{}
	for _, d := range devs {
		byID[d.id] = d
		d.mustCheckIn()
	}
	viewerPW := hex.EncodeToString(randomBytes(12))
	mustDo(t, createOperator(context.Background(), e.srv.Store, "vera-viewer", koshin.RoleViewer, viewerPW, cheapPassword))
	e.clock.Advance(20 * time.Minute)

	b := newBrowser(t)
	adminTab := b.tab(t)
	b.signIn(t, adminTab, e.srv.UIURL(), "root-admin", e.adminPW)
	b.waitText(t, adminTab, "#fleet-active", "6")

	// A bad form comes back with a visible message and the values kept.
	b.do(t, adminTab, chromedp.Navigate(e.srv.UIURL()+"rollouts/new"), chromedp.WaitVisible(chromedp.ID("rollout-form")))
	b.fillRolloutForm(t, adminTab, "10%, lots")
	b.waitText(t, adminTab, "#form-error", "is neither a percentage")
	b.fillRolloutForm(t, adminTab, "2, 100%")
	b.waitText(t, adminTab, "#rollout-state", "running")
	loc, err := chromedp.Run(adminTab, chromedp.Location())
	mustDo(t, err)
	var id int64
	if _, err := fmt.Sscanf(loc[strings.LastIndex(loc, "/")+1:], "%d", &id); err != nil {
		t.Fatalf("rollout page %s: %v", loc, err)
	}

	// Live progress: mark the page, let devices update, and see the counts
	// change with the mark still there (no reload).
	b.eval(t, adminTab, `window.koshinMark = "kept"; "ok"`)
	e.tick()
	phase0 := e.phaseDevices(admin, id, 0, byID)
	if len(phase0) != 2 {
		t.Fatalf("phase 1 has %d devices", len(phase0))
	}
	for _, d := range phase0 {
		e.clock.Advance(5 * time.Minute)
		updateDevice(t, d, "fw-2.0", deviceapi.EventCommitted)
	}
	b.waitText(t, adminTab, "#phase-1 td.committed", "2")
	if got := b.eval(t, adminTab, `window.koshinMark || "reloaded"`); got != "kept" {
		t.Fatalf("the rollout page was reloaded (%s); it should update in place", got)
	}

	// Pause and resume through the buttons.
	b.do(t, adminTab, chromedp.Click(chromedp.ID("pause")))
	b.waitText(t, adminTab, "#rollout-state", "paused")
	b.waitText(t, adminTab, "#flash", "paused")

	// The viewer, in a browser context of its own, sees no pause button,
	// and a forged pause with its own session and token is refused.
	viewerTab := b.isolatedTab(t)
	b.signIn(t, viewerTab, e.srv.UIURL(), "vera-viewer", viewerPW)
	b.do(t, viewerTab, chromedp.Navigate(fmt.Sprintf("%srollouts/%d", e.srv.UIURL(), id)), chromedp.WaitVisible(chromedp.ID("rollout-state")))
	for _, button := range []string{"pause", "resume", "abort", "advance"} {
		if n := b.eval(t, viewerTab, fmt.Sprintf(`String(document.querySelectorAll("#%s").length)`, button)); n != "0" {
			t.Errorf("the viewer sees the %s button", button)
		}
	}
	if status := forgedPost(t, e, b, viewerTab, fmt.Sprintf("/ui/rollouts/%d/resume", id)); status != http.StatusForbidden {
		t.Fatalf("viewer's forged resume: %d, want 403", status)
	}

	b.do(t, adminTab, chromedp.Click(chromedp.ID("resume")))
	b.waitText(t, adminTab, "#rollout-state", "running")
	if st := e.rolloutStatus(admin, id); st.Rollout.State != koshin.RolloutRunning {
		t.Fatalf("rollout %s after resume", st.Rollout.State)
	}

	// Phase 2: three devices commit, one rolls back; the page follows.
	b.eval(t, adminTab, `window.koshinMark = "kept"; "ok"`)
	e.clock.Advance(10 * time.Minute)
	e.tick()
	phase1 := e.phaseDevices(admin, id, 1, byID)
	if len(phase1) != 4 {
		t.Fatalf("phase 2 has %d devices", len(phase1))
	}
	b.waitText(t, adminTab, "#rollout-phase", "2")
	for i, d := range phase1 {
		e.clock.Advance(4 * time.Minute)
		if i == len(phase1)-1 {
			updateDevice(t, d, "fw-2.0", deviceapi.EventRolledBack)
			continue
		}
		updateDevice(t, d, "fw-2.0", deviceapi.EventCommitted)
	}
	b.waitText(t, adminTab, "#phase-2 td.committed", "3")
	if got := b.eval(t, adminTab, `window.koshinMark || "reloaded"`); got != "kept" {
		t.Fatal("the rollout page was reloaded during phase 2")
	}
	e.clock.Advance(10 * time.Minute)
	out := outputDir(t)
	b.do(t, adminTab, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("phase-table")))
	b.screenshot(t, adminTab, filepath.Join(out, "ui-rollout.png"))
	b.do(t, adminTab, chromedp.Navigate(e.srv.UIURL()), chromedp.WaitVisible(chromedp.ID("fleet-active")))
	b.waitText(t, adminTab, "#fleet-attention", "1")
	b.screenshot(t, adminTab, filepath.Join(out, "ui-overview.png"))

	// Every other page renders; then no console errors anywhere.
	for _, page := range []string{"devices", "devices?state=update+failed", "releases", "rollouts", "approvals", "audit", "compliance",
		"devices/" + phase1[3].id} {
		b.do(t, adminTab, chromedp.Navigate(e.srv.UIURL()+page), chromedp.WaitVisible(chromedp.ID("main")))
		if n := b.eval(t, adminTab, `String(document.querySelectorAll("#error-message").length)`); n != "0" {
			t.Errorf("page %s shows an error", page)
		}
	}
	b.do(t, adminTab, chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("sign-in")))
	if msgs := b.consoleErrors(); len(msgs) > 0 {
		t.Fatalf("console errors:\n%s", strings.Join(msgs, "\n"))
	}
	if os.Getenv("KOSHIN_UPDATE_DOCS") == "1" {
		for _, f := range []string{"ui-overview.png", "ui-rollout.png"} {
			data, err := os.ReadFile(filepath.Join(out, f))
			mustDo(t, err)
			mustDo(t, os.WriteFile(filepath.Join("..", "..", "docs", "img", f), data, 0o644))
		}
	}
}

// updateDevice walks d through an update of target that ends with last,
// reporting the new version after a commit.
func updateDevice(t *testing.T, d *device, target string, last deviceapi.EventType) {
	t.Helper()
	if resp := d.mustCheckIn(); resp.Director == nil {
		t.Fatalf("device %s was not offered the update", d.serial)
	}
	d.send(target, deviceapi.EventDownloading, deviceapi.EventDownloaded, deviceapi.EventInstalling, deviceapi.EventRebooting, last)
	rep := d.report()
	if last == deviceapi.EventCommitted {
		rep.Components = []deviceapi.Component{{Name: "rootfs", Version: "2.0", ReleaseCounter: 2, Target: target}}
	}
	if _, err := d.client.Report(context.Background(), d.key, rep, d.freshNonce()); err != nil {
		t.Fatalf("device %s report: %v", d.serial, err)
	}
}

// forgedPost replays what a hostile page could send with the viewer's
// session: its cookie and its own form token, posted outside the UI's
// forms. The server's route table must refuse it.
func forgedPost(t *testing.T, e *e2e, b *browser, tab context.Context, path string) int {
	t.Helper()
	token := b.eval(t, tab, `document.querySelector("#sign-out").form.querySelector("input[name=csrf]").value`)
	cookies, err := chromedp.Run(tab, chromedp.Action[[]*network.Cookie](func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{e.srv.ManagementURL() + "/ui/"}})
		return res.Cookies, err
	}))
	mustDo(t, err)
	req, _ := http.NewRequest("POST", e.srv.ManagementURL()+path, strings.NewReader(url.Values{"csrf": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	c := e.httpClient(nil)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	mustDo(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

func outputDir(t *testing.T) string {
	if d := os.Getenv("KOSHIN_TEST_OUTPUT"); d != "" {
		mustDo(t, os.MkdirAll(d, 0o755))
		return d
	}
	return t.TempDir()
}

// browser is headless Chromium with the flags that work on this kind of
// machine, and the console messages of every tab.
type browser struct {
	alloc context.Context
	root  context.Context
	mu    sync.Mutex
	msgs  []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		// The server's certificate comes from its own CA, dated by the
		// test's clock; the browser talks only to 127.0.0.1.
		chromedp.IgnoreCertErrors, chromedp.WindowSize(1280, 1500),
	}
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	root, cancelRoot := chromedp.NewContext(alloc)
	t.Cleanup(cancelRoot)
	if err := chromedp.Do(root); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{alloc: alloc, root: root}
}

// tab opens a tab in the default browser context and records its console.
func (b *browser) tab(t *testing.T) context.Context {
	return b.watch(t, b.root)
}

// isolatedTab opens a tab with cookies of its own (another operator).
func (b *browser) isolatedTab(t *testing.T) context.Context {
	ctx, cancel := chromedp.NewContext(b.root, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	return b.watch(t, ctx)
}

func (b *browser) watch(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() || m.Type == chromedp.ConsoleWarning {
				b.mu.Lock()
				b.msgs = append(b.msgs, fmt.Sprintf("%s (%s:%d)", m.String(), m.URL, m.Line))
				b.mu.Unlock()
			}
		}
	}()
	return ctx
}

func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.msgs)
}

func (b *browser) do(t *testing.T, tab context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tab, steps...); err != nil {
		t.Fatalf("browser: %v (console: %v)", err, b.consoleErrors())
	}
}

func (b *browser) eval(t *testing.T, tab context.Context, js string) string {
	t.Helper()
	v, err := chromedp.Run(tab, chromedp.Evaluate[string](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitText polls until the text of the element that the CSS selector sel
// finds contains want; the bound is a number of polls, not a deadline on
// the machine's speed.
func (b *browser) waitText(t *testing.T, tab context.Context, sel, want string) {
	t.Helper()
	js := fmt.Sprintf(`(function(){var e=document.querySelector(%q);return e?e.textContent:"";})()`, sel)
	var got string
	for range 1200 {
		v, err := chromedp.Run(tab, chromedp.Evaluate[string](js))
		if got = v; err == nil && strings.Contains(got, want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: text %q never contained %q (console: %v)", sel, got, want, b.consoleErrors())
}

func (b *browser) signIn(t *testing.T, tab context.Context, uiURL, name, pw string) {
	t.Helper()
	b.do(t, tab, chromedp.Navigate(uiURL), chromedp.WaitVisible(chromedp.ID("sign-in")),
		chromedp.SendKeys(chromedp.ID("name"), name), chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Click(chromedp.ID("sign-in")), chromedp.WaitVisible(chromedp.ID("sign-out")))
}

// fillRolloutForm fills the create form and submits it.
func (b *browser) fillRolloutForm(t *testing.T, tab context.Context, phases string) {
	t.Helper()
	fields := map[string]string{"name": "fw-2.0 to the fleet", "release": "fw-2.0", "phases": phases,
		"max_failures": "2", "max_failure_percent": "", "silence": "24h"}
	for id, v := range fields {
		b.eval(t, tab, fmt.Sprintf(`document.getElementById(%q).value = %q; "ok"`, id, v))
	}
	b.do(t, tab, chromedp.Click(chromedp.ID("create-rollout")), chromedp.WaitVisible(chromedp.ID("sign-out")))
}

func (b *browser) screenshot(t *testing.T, tab context.Context, path string) {
	t.Helper()
	png, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
	mustDo(t, err)
	mustDo(t, os.WriteFile(path, png, 0o644))
	t.Logf("screenshot %s (%d bytes)", path, len(png))
}
