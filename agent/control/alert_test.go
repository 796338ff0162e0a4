package control_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/control"
	"github.com/koshin-ota/koshin/deviceapi"
)

// restrict restarts the device with a boot-integrity hook that reports a
// failed boot chain, and the API on the new engine.
func (f *fixture) restrict() {
	f.t.Helper()
	tweak := f.r.Tweak
	f.r.Tweak = func(c *agent.Config) {
		tweak(c)
		c.BootIntegrity = func() string { return "failed" }
	}
	f.api.Close()
	f.e.Close()
	f.e = f.r.Boot()
	f.start()
}

// While restricted the API shows the alert and refuses every request that
// would change the software or how it updates; status and reading the
// settings still answer. Only root clears the alert, which is reported with
// the note; a cause that persists raises it again at the next check-in.
func TestRestrictedAPI(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 50)
	f.r.Server.Assign("")
	f.restrict()
	st := f.status()
	if !st.Security.Restricted || len(st.Alert) != 1 || st.Alert[0].Reason != agent.TamperBootIntegrity {
		t.Fatalf("status security %+v, alert %+v", st.Security, st.Alert)
	}
	c := f.client()
	off := false
	for name, call := range map[string]func() error{
		"approve":  func() error { _, err := c.Approve(ctx, ""); return err },
		"postpone": func() error { _, err := c.Postpone(ctx, control.Decision{For: "1h"}); return err },
		"decline":  func() error { _, err := c.Decline(ctx, ""); return err },
		"settings": func() error { _, err := c.UpdateSettings(ctx, control.SettingsPatch{UpdatesEnabled: &off}); return err },
		"defaults": func() error { _, err := c.RestoreDefaults(ctx); return err },
		"install":  func() error { _, err := c.InstallStream(ctx, bytes.NewReader(f.makeBundle())); return err },
	} {
		err := call()
		wantCode(t, err, http.StatusConflict)
		if !strings.Contains(err.Error(), "restricted") {
			t.Fatalf("%s: %v, want the restriction explained", name, err)
		}
	}
	if s, err := c.Settings(ctx); err != nil || !s.UpdatesEnabled {
		t.Fatalf("read settings while restricted: %+v, %v", s, err)
	}
	if f.r.Env().UpgradeAvailable {
		t.Fatal("the refused bundle switched the bootloader")
	}

	f.setCred(control.Cred{UID: 1000})
	_, err := f.client().ClearAlert(ctx, "")
	wantCode(t, err, http.StatusForbidden)
	f.setCred(control.Cred{UID: 0, PID: 4242})
	st, err = f.client().ClearAlert(ctx, "board inspected, secure boot keys re-provisioned")
	if err != nil || st.Security.Restricted || len(st.Alert) != 0 {
		t.Fatalf("clear: %+v, %v", st.Alert, err)
	}
	_, err = f.client().ClearAlert(ctx, "")
	wantCode(t, err, http.StatusConflict)
	if _, err := c.UpdateSettings(ctx, control.SettingsPatch{Notifications: &off}); err != nil {
		t.Fatalf("settings after clearing: %v", err)
	}

	f.poll()
	var cleared []deviceapi.Event
	for _, ev := range f.events() {
		if ev.Type == deviceapi.EventAlertCleared {
			cleared = append(cleared, ev)
		}
	}
	if len(cleared) != 1 || cleared[0].Reason != agent.ClearedByAdministrator ||
		!strings.Contains(cleared[0].Detail, "uid 0 (pid 4242): board inspected") {
		t.Fatalf("alert-cleared reports %+v", cleared)
	}
	// The hook still reports failed: the alert is back.
	if n := f.count(deviceapi.EventTamper); n != 2 || !f.status().Security.Restricted {
		t.Fatalf("tamper reports %d, restricted %v after the next check-in", n, f.status().Security.Restricted)
	}
}

// A factory reset stays possible while restricted (EN 303 645 5.11-1): it
// erases the user's data, keeps the alert and reports it again under the
// new identity.
func TestResetWhileRestricted(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 51)
	f.r.Server.Assign("")
	f.restrict()
	f.poll()
	if n := f.count(deviceapi.EventTamper); n != 1 {
		t.Fatalf("tamper reports %d before the reset", n)
	}
	if _, err := f.client().FactoryReset(ctx); err != nil {
		t.Fatalf("reset while restricted: %v", err)
	}
	if st := f.status(); !st.Security.Restricted {
		t.Fatal("the reset ended the restriction")
	}
	f.poll()
	if n := f.count(deviceapi.EventTamper); n != 2 {
		t.Fatalf("tamper reports %d after the reset, want the alert reported again", n)
	}
}

// A busy engine (an update step holding it) does not hide the alert from
// the status.
func TestStatusShowsAlertWhileBusy(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 52)
	f.restrict()
	release := make(chan struct{})
	held := make(chan struct{})
	go f.e.Exclusive(ctx, func() error { close(held); <-release; return nil })
	<-held
	defer close(release)
	c := control.NewClient(f.socket, f.client().Token)
	ctx2, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, err := c.Status(ctx2)
	if err != nil || !st.Busy || !st.Security.Restricted || len(st.Alert) == 0 {
		t.Fatalf("busy status: busy %v, security %+v, alert %+v, %v", st.Busy, st.Security, st.Alert, err)
	}
}
