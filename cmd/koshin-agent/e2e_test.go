package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
)

// device is a simulated device running the real koshin-agent commands in
// process: slot files, a simulated bootloader, and a state directory.
type device struct {
	t      *testing.T
	dir    string
	config string
	socket string
	srv    *fakeServer
	oldImg []byte
	newImg []byte
}

func newDevice(t *testing.T) *device {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	img := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	d := &device{t: t, dir: t.TempDir(), oldImg: img(40 << 10), newImg: img(48 << 10)}
	custom := func(n uint64) *trust.TargetCustom {
		return &trust.TargetCustom{HardwareIDs: []string{"board-a"}, Component: "rootfs", ReleaseCounter: n,
			Version: fmt.Sprintf("%d.0", n), Channel: trust.ChannelRelease}
	}
	imgRepo := trusttest.NewRepo(t, trusttest.Options{Now: time.Now()})
	dirRepo := trusttest.NewDirector(t, trusttest.Options{Now: time.Now()})
	imgRepo.AddTarget("rootfs-1.img", d.oldImg, custom(1))
	imgRepo.AddTarget("rootfs-2.img", d.newImg, custom(2))
	imgRepo.Publish()
	d.srv = newFakeServer(t, imgRepo, dirRepo, "kenr_test-token", "rootfs-2.img", "board-a")

	d.write("image-root.json", imgRepo.TrustedRoot())
	d.write("director-root.json", dirRepo.TrustedRoot())
	d.write("server-ca.pem", []byte(d.srv.serverCA()))
	slotA := append(append([]byte(nil), d.oldImg...), make([]byte, 24<<10)...)
	d.write("slot-a.img", slotA)
	d.write("slot-b.img", img(64<<10))
	sum := sha256.Sum256(d.oldImg)
	factory, _ := json.Marshal(map[string]agent.Installed{"rootfs": {Target: "rootfs-1.img", Version: "1.0",
		ReleaseCounter: 1, SHA256: hex.EncodeToString(sum[:])}})
	d.write("factory.json", factory)
	os.MkdirAll(d.path("health.d"), 0o755)
	os.MkdirAll(d.path("data"), 0o700)
	d.write("data/user.db", []byte("user data"))

	sockDir, err := os.MkdirTemp("", "ka") // socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	d.socket = filepath.Join(sockDir, "agent.sock")
	cfg := fmt.Sprintf(`{
  "server": %q,
  "state_dir": %q,
  "hardware_id": "board-a",
  "serial": "SN-0001",
  "slots": {"a": %q, "b": %q},
  "bootloader": {"type": "sim", "env": %q},
  "health": {"dir": %q, "timeout": "10s"},
  "installers": {"rootfs": {"type": "raw"}},
  "factory": %q,
  "reboot_command": ["/bin/true"],
  "control": {"socket": %q, "allowed_uids": [%d]},
  "reset": {"data_dirs": [%q]},
  "log_level": "warn"
}`, d.srv.srv.URL, d.path("state"), d.path("slot-a.img"), d.path("slot-b.img"), d.path("bootenv.json"),
		d.path("health.d"), d.path("factory.json"), d.socket, os.Getuid(), d.path("data"))
	d.write("agent.json", []byte(cfg))
	d.config = d.path("agent.json")
	return d
}

func (d *device) path(name string) string { return filepath.Join(d.dir, name) }

func (d *device) write(name string, data []byte) {
	d.t.Helper()
	if err := os.WriteFile(d.path(name), data, 0o600); err != nil {
		d.t.Fatal(err)
	}
}

// cmd runs one koshin-agent command line in process.
func (d *device) cmd(args ...string) (string, error) {
	var out, errs bytes.Buffer
	m := NewMain(&out, &errs)
	m.Getenv = func(string) string { return "" }
	args = append(args[:1:1], append([]string{"-config", d.config}, args[1:]...)...)
	if code := m.Run(args); code != 0 {
		return out.String(), fmt.Errorf("exit %d: %s", code, errs.String())
	}
	return out.String(), nil
}

// daemon runs `koshin-agent run` until stopped.
type daemon struct {
	cancel context.CancelFunc
	done   chan int
	errs   *syncBuffer
}

func (d *device) start() *daemon {
	ctx, cancel := context.WithCancel(context.Background())
	dm := &daemon{cancel: cancel, done: make(chan int, 1), errs: &syncBuffer{}}
	m := NewMain(&syncBuffer{}, dm.errs)
	m.Getenv = func(string) string { return "" }
	m.Signals = func(context.Context) (context.Context, context.CancelFunc) { return ctx, cancel }
	go func() { dm.done <- m.Run([]string{"run", "-config", d.config}) }()
	return dm
}

func (dm *daemon) stop(t *testing.T) {
	dm.cancel()
	if code := <-dm.done; code != 0 {
		t.Fatalf("agent exited %d: %s", code, dm.errs.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// until retries cond until it holds; the test's own deadline bounds it.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if t.Context().Err() != nil {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (d *device) simEnv() simEnv {
	var env simEnv
	b, _ := os.ReadFile(d.path("bootenv.json"))
	json.Unmarshal(b, &env)
	return env
}

// The agent binary end to end on a simulated device: enroll with a token
// and provision the roots, update A → B through a trial boot, commit on
// the new slot, report to the server; then a factory reset through the
// CLI rotates the identity while the software stays.
func TestAgentEndToEnd(t *testing.T) {
	d := newDevice(t)
	out, err := d.cmd("enroll", "-token", "kenr_test-token", "-server-ca", d.path("server-ca.pem"),
		"-image-root", d.path("image-root.json"), "-director-root", d.path("director-root.json"))
	if err != nil || !strings.Contains(out, "enrolled as device") {
		t.Fatalf("enroll: %q, %v", out, err)
	}
	enr := d.srv.enrollments()
	if len(enr) != 1 || enr[0].Serial != "SN-0001" || enr[0].EncryptionKey == "" {
		t.Fatalf("enrollment requests %+v", enr)
	}
	if _, err := d.cmd("enroll", "-token", "kenr_test-token", "-preauthorized"); err == nil {
		t.Fatal("accepted a token together with -preauthorized")
	}

	dm := d.start()
	until(t, "the control socket", func() bool { _, err := d.cmd("status"); return err == nil })
	// Switching updates off and on is a user action that wakes the poll
	// loop, sparing the test the start-up jitter.
	if _, err := d.cmd("settings", "-updates", "off"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.cmd("settings", "-updates", "on"); err != nil {
		t.Fatal(err)
	}
	until(t, "a trial boot of slot B", func() bool { e := d.simEnv(); return e.Slot == "B" && e.UpgradeAvailable })
	dm.stop(t)

	dm = d.start() // the "reboot": the simulated bootloader boots B on trial
	until(t, "the commit report", func() bool { return d.srv.has(deviceapi.EventCommitted) })
	out, err = d.cmd("status")
	if err != nil || !strings.Contains(out, "installed   rootfs 2.0 (rootfs-2.img)") || !strings.Contains(out, "boot        slot B (next boot B)") {
		t.Fatalf("status after the update:\n%s%v", out, err)
	}
	if e := d.simEnv(); e.Slot != "B" || e.UpgradeAvailable {
		t.Fatalf("bootloader %+v, want B committed", e)
	}

	before := d.deviceID()
	out, err = d.cmd("reset", "-yes")
	if err != nil || !strings.Contains(out, d.path("data/user.db")) || !strings.Contains(out, "rootfs 2.0") {
		t.Fatalf("reset:\n%s%v", out, err)
	}
	if _, err := os.Stat(d.path("data/user.db")); !os.IsNotExist(err) {
		t.Fatal("user data survived the reset")
	}
	until(t, "the agent back with its new identity", func() bool {
		out, err := d.cmd("status")
		return err == nil && strings.Contains(out, "not enrolled")
	})
	if after := d.deviceID(); after == before || after == "" {
		t.Fatalf("device ID %s after reset, was %s", after, before)
	}
	dm.stop(t)
}

func (d *device) deviceID() string {
	out, err := d.cmd("identity")
	if err != nil {
		d.t.Fatal(err)
	}
	id, _, _ := strings.Cut(strings.TrimPrefix(out, "device_id   "), "\n")
	return id
}
