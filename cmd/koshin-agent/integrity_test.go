package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/deviceapi"
)

// configure edits the device's configuration file.
func (d *device) configure(edit func(map[string]any)) {
	d.t.Helper()
	b, err := os.ReadFile(d.config)
	if err != nil {
		d.t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		d.t.Fatal(err)
	}
	edit(m)
	if b, err = json.Marshal(m); err != nil {
		d.t.Fatal(err)
	}
	d.write("agent.json", b)
}

func (f *fakeServer) eventsOf(typ deviceapi.EventType) []deviceapi.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []deviceapi.Event
	for _, e := range f.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// The daemon on a device whose boot-integrity hook (integrity.boot_check)
// reports a failed boot chain: the status shows the alert, local changes
// are refused, root clears the alert (reported), the persisting cause
// raises it again, the server's update still installs, and its commit on
// a verified boot ends the restriction.
func TestAgentRestrictedAfterUnauthorisedChange(t *testing.T) {
	d := newDevice(t)
	if _, err := d.cmd("enroll", "-token", "kenr_test-token", "-server-ca", d.path("server-ca.pem"),
		"-image-root", d.path("image-root.json"), "-director-root", d.path("director-root.json")); err != nil {
		t.Fatal(err)
	}
	check := d.path("boot-check")
	verdict := func(exit string) {
		if err := os.WriteFile(check, []byte("#!/bin/sh\nexit "+exit+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	verdict("1")
	d.configure(func(m map[string]any) { m["integrity"] = map[string]any{"boot_check": []string{check}} })

	dm := d.start()
	until(t, "the control socket", func() bool { _, err := d.cmd("status"); return err == nil })
	out, _ := d.cmd("status")
	if !strings.Contains(out, "boot integrity failed") || !strings.Contains(out, "ALERT") ||
		!strings.Contains(out, agent.TamperBootIntegrity) || !strings.Contains(out, "restricted  ") {
		t.Fatalf("status of a restricted device:\n%s", out)
	}
	if _, err := d.cmd("settings", "-updates", "off"); err == nil || !strings.Contains(err.Error(), "restricted") {
		t.Fatalf("settings change while restricted: %v", err)
	}
	if os.Getuid() != 0 {
		// The control socket sees this process's real UID; only root clears.
		if _, err := d.cmd("clear-alert"); err == nil || !strings.Contains(err.Error(), "only root") {
			t.Fatalf("clear-alert as uid %d: %v", os.Getuid(), err)
		}
		dm.stop(t)
		return
	}
	if out, err := d.cmd("clear-alert", "-note", "checked the boot chain"); err != nil || !strings.Contains(out, "alert cleared") {
		t.Fatalf("clear-alert: %q, %v", out, err)
	}
	// Clearing wakes the poll loop: the report goes out, the failing hook
	// raises the alert again, and the server's update installs regardless.
	until(t, "the reports and a trial boot of slot B", func() bool {
		e := d.simEnv()
		return len(d.srv.eventsOf(deviceapi.EventTamper)) == 2 && len(d.srv.eventsOf(deviceapi.EventAlertCleared)) == 1 &&
			e.Slot == "B" && e.UpgradeAvailable
	})
	if c := d.srv.eventsOf(deviceapi.EventAlertCleared)[0]; c.Reason != agent.ClearedByAdministrator || !strings.Contains(c.Detail, "checked the boot chain") {
		t.Fatalf("alert-cleared report %+v", c)
	}
	dm.stop(t)

	verdict("0") // the new image boots verified
	dm = d.start()
	until(t, "the commit report", func() bool { return d.srv.has(deviceapi.EventCommitted) })
	cleared := d.srv.eventsOf(deviceapi.EventAlertCleared)
	if len(cleared) != 2 || cleared[1].Reason != agent.ClearedByUpdate {
		t.Fatalf("alert-cleared reports %+v", cleared)
	}
	if out, err := d.cmd("status"); err != nil || strings.Contains(out, "ALERT") || !strings.Contains(out, "boot integrity verified") {
		t.Fatalf("status after the commit:\n%s%v", out, err)
	}
	dm.stop(t)
}
