package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/tpm"
	"github.com/koshin-ota/koshin/agent/tpm/tpmtest"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
)

// useSwtpm starts a software TPM and points the agent's TPM device at it
// (openTPM), for the rest of the test. swtpm serves one connection at a
// time: open a connection of the test's own only while no agent runs.
func useSwtpm(t *testing.T) func() transport.TPMCloser {
	t.Helper()
	sw := tpmtest.Start(t)
	var devices []string
	old := openTPM
	t.Cleanup(func() { openTPM = old })
	openTPM = func(path string) (transport.TPMCloser, error) {
		devices = append(devices, path)
		return tpm.OpenTCP(sw.CommandAddr(), sw.PlatformAddr())
	}
	t.Cleanup(func() {
		for _, d := range devices {
			if d != tpm.DefaultDevice {
				t.Errorf("the agent opened TPM %q, want the configured %s", d, tpm.DefaultDevice)
			}
		}
	})
	return sw.Open
}

// tpmValue reads component's counter from the TPM on a connection of its
// own (no agent may be running).
func tpmValue(t *testing.T, open func() transport.TPMCloser, component string) uint64 {
	t.Helper()
	conn := open()
	defer conn.Close()
	c, err := tpm.New(conn, tpm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.Get(component)
	if err != nil {
		t.Fatalf("TPM counter of %s: %v", component, err)
	}
	return n
}

// useTPMCounter switches the device's configuration to the TPM counter.
func (d *device) useTPMCounter() {
	d.t.Helper()
	b, err := os.ReadFile(d.config)
	if err != nil {
		d.t.Fatal(err)
	}
	s := strings.Replace(string(b), `"log_level"`, `"counter": {"type": "tpm", "tpm_device": "/dev/tpmrm0", "tpm_nv_base": "0x01804B00"},
  "log_level"`, 1)
	if s == string(b) {
		d.t.Fatal("no log_level line to put the counter section before")
	}
	d.write("agent.json", []byte(s))
}

func (d *device) enroll() {
	d.t.Helper()
	if out, err := d.cmd("enroll", "-token", "kenr_test-token", "-server-ca", d.path("server-ca.pem"),
		"-image-root", d.path("image-root.json"), "-director-root", d.path("director-root.json")); err != nil {
		d.t.Fatalf("enroll: %q, %v", out, err)
	}
}

// fileCounter is the device's file counter, as the agent keys it.
func (d *device) fileCounter() *agent.FileCounter {
	d.t.Helper()
	key, err := loadOrCreateKey(d.path("state/counter.key"))
	if err != nil {
		d.t.Fatal(err)
	}
	return &agent.FileCounter{FS: agent.DirFS(d.path("state/agent")), Key: key}
}

// poll wakes the running agent's poll loop (as TestAgentEndToEnd does).
func (d *device) poll() {
	d.t.Helper()
	for _, v := range []string{"off", "on"} {
		if _, err := d.cmd("settings", "-updates", v); err != nil {
			d.t.Fatal(err)
		}
	}
}

// A device switching from the file counter to the TPM carries the file's
// value over; from then on the counter is the TPM's, so the state directory
// restored from before the switch (file counter 1) does not let release 2
// in after release 3 was committed: the agent rejects it as a rollback.
func TestAgentTPMCounterTakesUpFileAndIgnoresRestoredState(t *testing.T) {
	tpmtest.Need(t)
	open := useSwtpm(t)
	d := newDevice(t)
	d.enroll()
	os.MkdirAll(d.path("state/agent"), 0o700)
	fc := d.fileCounter()
	if err := fc.Advance("rootfs", 1); err != nil {
		t.Fatal(err)
	}
	var old [2][]byte
	for i, f := range []string{"counter.0", "counter.1"} {
		old[i], _ = os.ReadFile(d.path("state/agent/" + f))
	}
	if err := fc.Advance("rootfs", 3); err != nil { // release 3 committed under the file counter
		t.Fatal(err)
	}

	d.useTPMCounter()
	dm := d.start()
	until(t, "the control socket", func() bool { _, err := d.cmd("status"); return err == nil })
	dm.stop(t)
	if n := tpmValue(t, open, "rootfs"); n != 3 {
		t.Fatalf("TPM counter after the switch: %d, want the file counter's 3", n)
	}
	if _, err := os.Stat(d.path("state/agent/" + counterTakenUp)); err != nil {
		t.Fatalf("no record of the take-up: %v", err)
	}

	// The state directory comes back from a copy made before the switch.
	for i, f := range []string{"counter.0", "counter.1"} {
		os.Remove(d.path("state/agent/" + f))
		if old[i] != nil {
			d.write("state/agent/"+f, old[i])
		}
	}
	os.Remove(d.path("state/agent/" + counterTakenUp))
	if n, err := fc.Get("rootfs"); err != nil || n != 1 {
		t.Fatalf("restored file counter: %d, %v; want 1", n, err)
	}

	dm = d.start()
	until(t, "the control socket", func() bool { _, err := d.cmd("status"); return err == nil })
	d.poll()
	until(t, "the rejection report", func() bool { return d.srv.has(deviceapi.EventRejected) })
	dm.stop(t)
	if ev := d.srv.event(deviceapi.EventRejected); ev.Reason != trust.ErrRollback.Error() {
		t.Fatalf("release 2 rejected as %q (%s), want %q", ev.Reason, ev.Detail, trust.ErrRollback.Error())
	}
	if e := d.simEnv(); e.Slot == "B" || e.UpgradeAvailable || d.srv.has(deviceapi.EventDownloading) {
		t.Fatalf("release 2 was installed: bootloader %+v", e)
	}
	if n := tpmValue(t, open, "rootfs"); n != 3 {
		t.Fatalf("TPM counter after the restored state: %d, want 3", n)
	}
}

// With the TPM counter from the first start, the factory image's release
// counter is the counter's start, it stays there through the trial boot,
// and the commit advances the TPM counter, not the file.
func TestAgentTPMCounterAdvancesAtCommit(t *testing.T) {
	tpmtest.Need(t)
	open := useSwtpm(t)
	d := newDevice(t)
	d.enroll()
	d.useTPMCounter()

	dm := d.start()
	until(t, "the control socket", func() bool { _, err := d.cmd("status"); return err == nil })
	d.poll()
	until(t, "a trial boot of slot B", func() bool { e := d.simEnv(); return e.Slot == "B" && e.UpgradeAvailable })
	dm.stop(t)
	if n := tpmValue(t, open, "rootfs"); n != 1 {
		t.Fatalf("TPM counter before the commit: %d, want the factory image's 1", n)
	}

	dm = d.start() // the simulated bootloader boots B on trial
	until(t, "the commit report", func() bool { return d.srv.has(deviceapi.EventCommitted) })
	dm.stop(t)
	if n := tpmValue(t, open, "rootfs"); n != 2 {
		t.Fatalf("TPM counter after the commit: %d, want 2", n)
	}
	if n, err := d.fileCounter().Get("rootfs"); err != nil || n != 0 {
		t.Fatalf("file counter: %d, %v; want it untouched (0)", n, err)
	}
}

// event returns the first event of type typ the server received.
func (f *fakeServer) event(typ deviceapi.EventType) deviceapi.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.events {
		if e.Type == typ {
			return e
		}
	}
	return deviceapi.Event{}
}

// With an owner password on the TPM, the agent defines its indices only
// with counter.tpm_owner_auth_file, and stops naming the component without
// it; it closes the TPM either way (swtpm, serving one connection at a
// time, would not answer the next one otherwise).
func TestTPMCounterOwnerAuth(t *testing.T) {
	tpmtest.Need(t)
	open := useSwtpm(t)
	conn := open()
	if _, err := (tpm2.HierarchyChangeAuth{AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
		NewAuth: tpm2.TPM2BAuth{Buffer: []byte("owner secret")}}).Execute(conn); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	cfg, err := counterConfig(t, `, "counter": {"type": "tpm"}`)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg.StateDir, cfg.Counter.TPMOwnerAuthFile = dir, filepath.Join(dir, "owner.auth")
	a := &Agent{cfg: cfg, log: slog.New(slog.DiscardHandler)}
	state := agent.DirFS(t.TempDir())
	factory := map[string]agent.Installed{"rootfs": {Version: "1.0", ReleaseCounter: 4}}
	if _, _, err := a.counter(state, make([]byte, 32), factory); err == nil || !strings.Contains(err.Error(), "define the TPM counter of rootfs") {
		t.Fatalf("without the owner password: %v", err)
	}
	if err := os.WriteFile(cfg.Counter.TPMOwnerAuthFile, []byte("owner secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, closeTPM, err := a.counter(state, make([]byte, 32), factory)
	if err != nil {
		t.Fatalf("with the owner password: %v", err)
	}
	if n, err := c.Get("rootfs"); err != nil || n != 4 {
		t.Fatalf("rootfs: %d, %v; want the factory's 4", n, err)
	}
	closeTPM()
	// The file is needed no more once the indices exist.
	os.Remove(cfg.Counter.TPMOwnerAuthFile)
	c, closeTPM, err = a.counter(state, make([]byte, 32), factory)
	if err != nil {
		t.Fatalf("after provisioning, without the file: %v", err)
	}
	if err := c.Advance("rootfs", 5); err != nil {
		t.Fatal(err)
	}
	closeTPM()
	if n := tpmValue(t, open, "rootfs"); n != 5 {
		t.Fatalf("rootfs: %d, want 5", n)
	}
}
