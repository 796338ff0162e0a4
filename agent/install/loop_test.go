package install_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/agenttest"
	"github.com/koshin-ota/koshin/agent/bootenv"
	"github.com/koshin-ota/koshin/agent/install"
	"github.com/koshin-ota/koshin/agent/uboot"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/koshin-ota/koshin/trust/verify"
)

// TestLoopDeviceAB updates a real A/B disk: a GPT image on a loop device
// with a boot partition holding a redundant U-Boot environment, root file
// systems A and B, and a data partition. The engine downloads a signed ext4
// image of release 2 and the Raw installer streams it into partition B
// (FileSlots on /dev/loopNp3), reads it back against the signed digest,
// and the engine arms B in the U-Boot environment; a simulated U-Boot then
// boots B with boot counting, the health check passes, the engine commits.
// Finally partition B is mounted read-only and holds release 2's files.
//
// It needs root, loop devices, sfdisk (package fdisk), partx and losetup
// (util-linux, mount) and mkfs.ext4 (e2fsprogs); set KOSHIN_LOOP_TESTS=1.
// The kernel here parses no partition tables (losetup -P creates nothing),
// so partx -a adds the partition nodes.
func TestLoopDeviceAB(t *testing.T) {
	needLoop(t)
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	loopRun(t, "truncate", "-s", "128M", disk)
	loopRunIn(t, "label: gpt\n"+
		"size=8M, name=boot, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\n"+
		"size=48M, name=rootA\n"+
		"size=48M, name=rootB\n"+
		"name=data\n", "sfdisk", "-q", disk)
	loop := strings.TrimSpace(loopRun(t, "losetup", "--find", "--show", disk))
	t.Cleanup(func() {
		// Partitions first, then the device; both even if the test failed.
		if out, err := exec.Command("partx", "-d", loop).CombinedOutput(); err != nil {
			t.Errorf("partx -d %s: %v: %s", loop, err, out)
		}
		if out, err := exec.Command("losetup", "-d", loop).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", loop, err, out)
		}
	})
	loopRun(t, "partx", "-a", loop)
	part := func(n int) string { return loop + "p" + strconv.Itoa(n) }
	for n := 1; n <= 4; n++ {
		if fi, err := os.Stat(part(n)); err != nil || fi.Mode()&os.ModeDevice == 0 {
			t.Fatalf("partition node %s after partx -a: %v", part(n), err)
		}
	}

	// Factory state: release 1 in A, an empty B, the environment in boot.
	tree1 := loopTree(t, filepath.Join(dir, "tree1"), "1.0", 1)
	loopRun(t, "mkfs.ext4", "-q", "-F", "-L", "rootA", "-d", tree1, part(2))
	env := uboot.Config{Copies: []uboot.Location{
		{Path: part(1), Offset: 0, Size: 0x4000},
		{Path: part(1), Offset: 0x4000, Size: 0x4000},
	}}
	writeEnv(t, env)

	// Release 2: a real ext4 image built from a file tree, signed.
	tree2 := loopTree(t, filepath.Join(dir, "tree2"), "2.0", 2)
	img2 := filepath.Join(dir, "rootfs-2.ext4")
	loopRun(t, "truncate", "-s", "40M", img2)
	loopRun(t, "mkfs.ext4", "-q", "-F", "-L", "rootB", "-d", tree2, img2)
	payload, err := os.ReadFile(img2)
	if err != nil {
		t.Fatal(err)
	}
	slotA := readPart(t, part(2), 48<<20)

	w := newLoopWorld(t, slotA, payload)
	dev := &loopDevice{t: t, w: w, env: env, stateDir: filepath.Join(dir, "state"),
		slots: install.FileSlots{A: part(2), B: part(3)}}
	if err := os.Mkdir(dev.stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	dev.settle()

	// The bootloader switched to B and the trial was committed.
	e, err := uboot.Open(env)
	if err != nil {
		t.Fatal(err)
	}
	if slot, _ := e.Get(uboot.DefaultSlotVar); slot != "B" || e.TrialPending() || dev.booted != "B" {
		t.Fatalf("after the update: %s=%q, trial pending %v, booted %s; want B committed", uboot.DefaultSlotVar, slot, e.TrialPending(), dev.booted)
	}
	if got := committed(w.srv); got != "rootfs-2.ext4" {
		t.Fatalf("committed %q; events %v", got, w.srv.Received())
	}
	if path, err := exec.LookPath("fw_printenv"); err == nil {
		cfg := filepath.Join(dir, "fw_env.config")
		os.WriteFile(cfg, []byte(fmt.Sprintf("%s 0x0 0x4000\n%s 0x4000 0x4000\n", part(1), part(1))), 0o600)
		if out := strings.TrimSpace(loopRun(t, path, "-c", cfg, "-n", uboot.DefaultSlotVar)); out != "B" {
			t.Fatalf("fw_printenv reads %s=%q, want B", uboot.DefaultSlotVar, out)
		}
	}

	// Partition B holds release 2's file system, byte for byte and as files.
	if got := readPart(t, part(3), int64(len(payload))); !bytes.Equal(got, payload) {
		t.Fatal("partition B does not hold the release 2 image")
	}
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	loopRun(t, "mount", "-t", "ext4", "-o", "ro", part(3), mnt)
	defer func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	}()
	for _, name := range []string{"etc/koshin-release", "usr/lib/payload.bin"} {
		want, _ := os.ReadFile(filepath.Join(tree2, name))
		got, err := os.ReadFile(filepath.Join(mnt, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s on partition B: %v (%d bytes, want %d)", name, err, len(got), len(want))
		}
	}
	t.Logf("release 2 (%d MiB ext4) installed into %s through FileSlots, U-Boot env switched to B, mounted read-only: files match", len(payload)>>20, part(3))
}

func needLoop(t *testing.T) {
	t.Helper()
	if os.Getenv("KOSHIN_LOOP_TESTS") != "1" {
		t.Skip("loop-device A/B test: set KOSHIN_LOOP_TESTS=1 (needs root, fdisk, e2fsprogs, util-linux)")
	}
	if os.Geteuid() != 0 {
		t.Skip("KOSHIN_LOOP_TESTS=1 but not root: loop devices and mount need root")
	}
	for _, tool := range []string{"sfdisk", "losetup", "partx", "mkfs.ext4", "mount", "umount", "truncate"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("KOSHIN_LOOP_TESTS=1 but %s is missing (apt-get install fdisk e2fsprogs util-linux mount)", tool)
		}
	}
}

func loopRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	return loopRunIn(t, "", name, args...)
}

func loopRunIn(t *testing.T, stdin, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.Bytes())
	}
	return string(out)
}

// loopTree writes a small root file system tree for release version.
func loopTree(t *testing.T, dir, version string, seed uint64) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	bin := make([]byte, 4<<20)
	for i := range bin {
		bin[i] = byte(rng.Uint32())
	}
	for name, data := range map[string][]byte{
		"etc/koshin-release":  []byte("VERSION=" + version + "\n"),
		"usr/lib/payload.bin": bin,
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeEnv writes a redundant U-Boot environment with koshin's A/B boot
// counting (agent/uboot/testdata/ab-boot.env) into both copies.
func writeEnv(t *testing.T, env uboot.Config) {
	t.Helper()
	vars := map[string]string{"bootlimit": "3", "bootcount": "0", "upgrade_available": "0", "koshin_slot": "A",
		"bootcmd":    `if test "${koshin_slot}" = "B"; then run koshin_boot_B; else run koshin_boot_A; fi`,
		"altbootcmd": `if test "${koshin_slot}" = "B"; then setenv koshin_slot A; else setenv koshin_slot B; fi; setenv upgrade_available 0; setenv bootcount 0; saveenv; run bootcmd`}
	for i, loc := range env.Copies {
		b, err := uboot.Encode(uboot.Image{Vars: vars, Flags: uint8(i)}, int(loc.Size), true)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(loc.Path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(b, loc.Offset); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func readPart(t *testing.T, path string, n int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(f, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func shaHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

const loopHardware = "board-loop"

// loopWorld is the server side: an image repository holding the factory
// image (counter 1) and release 2 (counter 2), and a director assigning 2.
type loopWorld struct {
	img, dir *trusttest.Repo
	clock    *trusttest.Clock
	key      ed25519.PrivateKey
	srv      *agenttest.Server
	factory  string // SHA-256 of the factory image
}

func newLoopWorld(t *testing.T, factory, payload []byte) *loopWorld {
	t.Helper()
	w := &loopWorld{clock: trusttest.NewClock(trusttest.Epoch),
		key:     ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32)),
		factory: shaHex(factory)}
	w.img = trusttest.NewRepo(t, trusttest.Options{MetaHashes: true})
	w.dir = trusttest.NewDirector(t, trusttest.Options{})
	for n, b := range map[int][]byte{1: factory, 2: payload} {
		w.img.AddTarget(fmt.Sprintf("rootfs-%d.ext4", n), b, &trust.TargetCustom{HardwareIDs: []string{loopHardware},
			Component: "rootfs", ReleaseCounter: uint64(n), Version: fmt.Sprintf("%d.0", n), Channel: trust.ChannelRelease})
	}
	w.img.Publish()
	w.srv = &agenttest.Server{Img: w.img, Dir: w.dir, PublicKey: w.key.Public().(ed25519.PublicKey),
		Device: trust.Device{ID: "loop-0001", HardwareID: loopHardware, Channel: trust.ChannelRelease}}
	w.srv.Assign("rootfs-2.ext4")
	return w
}

// loopDevice is the device side: the disk's partitions, a state directory,
// and the slot U-Boot booted last.
type loopDevice struct {
	t        *testing.T
	w        *loopWorld
	env      uboot.Config
	slots    install.FileSlots
	stateDir string
	booted   string
	boots    int
}

// powerOn runs U-Boot's part of a boot on the environment (bootcmd and
// altbootcmd of writeEnv with CONFIG_BOOTCOUNT_ENV): count a trial boot,
// fall back once bootcount exceeds bootlimit, boot koshin_slot.
func (d *loopDevice) powerOn() {
	d.t.Helper()
	e, err := uboot.Open(d.env)
	if err != nil {
		d.t.Fatalf("U-Boot: %v", err)
	}
	if e.TrialPending() {
		e.Set(uboot.VarBootcount, strconv.FormatUint(e.BootCount()+1, 10))
		if e.BootCount() > e.BootLimit() {
			slot, _ := e.Get(uboot.DefaultSlotVar)
			e.Revert(uboot.DefaultSlotVar, map[string]string{"A": "B", "B": "A"}[slot])
		}
		if err := e.Save(); err != nil {
			d.t.Fatalf("U-Boot saveenv: %v", err)
		}
	}
	d.booted, _ = e.Get(uboot.DefaultSlotVar)
	d.boots++
}

func (d *loopDevice) engine() *agent.Engine {
	d.t.Helper()
	w := d.w
	dev := trust.Device{ID: "loop-0001", HardwareID: loopHardware, Channel: trust.ChannelRelease}
	meta := filepath.Join(d.stateDir, "meta")
	if _, err := os.Stat(meta); errors.Is(err, os.ErrNotExist) {
		os.Mkdir(meta, 0o700)
		if err := verify.Provision(meta, w.img.TrustedRoot(), w.dir.TrustedRoot(), trust.ChannelRelease); err != nil {
			d.t.Fatal(err)
		}
	}
	v, err := verify.New(verify.Config{Device: dev, Dir: meta,
		ImageURL: w.img.MetadataURL(), DirectorURL: w.dir.MetadataURL(), TargetsURL: w.img.TargetsURL(),
		Fetcher: trusttest.Mux{w.img, w.dir}, Now: w.clock.Now})
	if err != nil {
		d.t.Fatal(err)
	}
	state := agent.DirFS(d.stateDir)
	e, err := agent.New(agent.Config{
		DeviceID: dev.ID, HardwareID: loopHardware, Signer: w.key,
		Server: w.srv, Verifier: &agent.TrustVerifier{V: v}, Fetcher: trusttest.Mux{w.img, w.dir},
		Bootloader: &bootenv.UBoot{Env: d.env, Booted: func() (string, error) { return d.booted, nil }},
		Slots:      d.slots,
		Installers: map[string]agent.Installer{"rootfs": &install.Raw{Slots: d.slots}},
		Health:     loopHealthy{}, Counter: &agent.FileCounter{FS: state}, State: state,
		Reboot: func(context.Context) error { return nil },
		Factory: map[string]agent.Installed{"rootfs": {Target: "rootfs-1.ext4", Version: "1.0",
			ReleaseCounter: 1, SHA256: w.factory}},
		Settings: deviceapi.Settings{UpdatesEnabled: true, Automatic: true, Notifications: true},
		Now:      w.clock.Now,
		Sleep:    func(context.Context, time.Duration) error { return nil },
		Rand:     rand.NewChaCha8([32]byte{byte(d.boots)}),
	})
	if err != nil {
		d.t.Fatal(err)
	}
	return e
}

// settle boots until the device has nothing left to do.
func (d *loopDevice) settle() {
	d.t.Helper()
	ctx := context.Background()
	for range 6 {
		d.powerOn()
		if d.life(ctx) {
			return
		}
	}
	d.t.Fatalf("no settled state after %d boots", d.boots)
}

func (d *loopDevice) life(ctx context.Context) bool {
	e := d.engine()
	defer e.Close()
	if err := e.Start(ctx); errors.Is(err, agent.ErrReboot) {
		return false
	} else if err != nil {
		d.t.Fatalf("start: %v", err)
	}
	for range 6 {
		if _, err := e.Poll(ctx); errors.Is(err, agent.ErrReboot) {
			return false
		} else if err != nil {
			d.t.Fatalf("poll: %v", err)
		}
		st, err := e.Status(ctx)
		if err != nil {
			d.t.Fatal(err)
		}
		if st.Tx != nil && st.Tx.State.Terminal() && st.Outbox == 0 && !st.Boot.Trial && st.Boot.Booted == st.Boot.Primary {
			return true
		}
	}
	return false
}

type loopHealthy struct{}

func (loopHealthy) Check(context.Context) error { return nil }

func committed(srv *agenttest.Server) string {
	for _, e := range srv.Received() {
		if e.Type == deviceapi.EventCommitted {
			return e.Target
		}
	}
	return ""
}
