package tpm_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/agenttest"
	"github.com/koshin-ota/koshin/agent/install"
	"github.com/koshin-ota/koshin/agent/tpm"
	"github.com/koshin-ota/koshin/agent/tpm/tpmtest"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/koshin-ota/koshin/trust/verify"
)

// The attack: someone with write access to the flash (or root on the
// device) copies the agent's state directory — journal and counter files —
// while release 1 is installed, lets the device commit release 3, puts the
// old directory back, and then offers release 2: signed, valid, but older
// than what the device already committed (for instance because 2 has a
// known vulnerability that 3 fixed). CCDS UPE03 and EN 303 645 5.3-2 say
// the device must refuse it.
//
// With the file counter, the restored files say "counter 1", so release 2
// looks like an upgrade and is installed: the file counter alone is fooled.
// With the TPM NV counter, the hardware still says 3 whatever the files
// say, so release 2 is rejected as a rollback and nothing is switched.
func TestRestoredStateDirectory(t *testing.T) {
	t.Run("file counter is fooled", func(t *testing.T) {
		d := newDevice(t, func(*agenttest.Device) agent.Counter { return nil })
		got := d.restoreAttack()
		if got.booted != "A" || got.holds != "2.0" || got.counter != 2 || !got.committed2 {
			t.Fatalf("after the restored state: %+v; want release 2 committed over 3 (the file counter's known limit)", got)
		}
	})
	t.Run("TPM counter refuses", func(t *testing.T) {
		tpmtest.Need(t)
		sw := tpmtest.Start(t)
		conn := sw.Open()
		d := newDevice(t, func(*agenttest.Device) agent.Counter {
			c, err := tpm.New(conn, tpm.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return c
		})
		got := d.restoreAttack()
		if got.booted != "B" || got.holds != "3.0" || got.counter != 3 || got.committed2 {
			t.Fatalf("after the restored state: %+v; want release 3 still booted and counter 3", got)
		}
		if got.rejected != trust.ErrRollback.Error() {
			t.Fatalf("release 2 was not rejected as a rollback: events %v", d.srv.Received())
		}
		// The file counter in the same directory was fooled all the same.
		if n, err := d.d.Counter().Get(component); err != nil || n != 1 {
			t.Fatalf("restored file counter: %d, %v; want the stale 1", n, err)
		}
	})
}

const (
	hardware  = "board-a"
	component = "rootfs"
	slotSize  = 64 << 10
)

type device struct {
	t       *testing.T
	img, dr *trusttest.Repo
	clock   *trusttest.Clock
	key     ed25519.PrivateKey
	images  map[string][]byte // version → image
	d       *agenttest.Device
	srv     *agenttest.Server
	dev     trust.Device
	// counter returns the engine's counter for a boot; nil means the
	// device's file counter.
	counter func(*agenttest.Device) agent.Counter
	boots   int
}

func releaseName(n int) string { return fmt.Sprintf("rootfs-%d.img", n) }

// newDevice publishes releases 1, 2, 3 and makes a simulated device
// running release 1 (counter 1).
func newDevice(t *testing.T, counter func(*agenttest.Device) agent.Counter) *device {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	x := &device{t: t, clock: trusttest.NewClock(trusttest.Epoch), counter: counter,
		key:    ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32)),
		images: map[string][]byte{}}
	x.img = trusttest.NewRepo(t, trusttest.Options{MetaHashes: true})
	x.dr = trusttest.NewDirector(t, trusttest.Options{})
	for n := 1; n <= 3; n++ {
		b := make([]byte, 40<<10+n<<10)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		x.images[fmt.Sprintf("%d.0", n)] = b
		x.img.AddTarget(releaseName(n), b, &trust.TargetCustom{HardwareIDs: []string{hardware},
			Component: component, ReleaseCounter: uint64(n), Version: fmt.Sprintf("%d.0", n),
			Channel: trust.ChannelRelease})
	}
	x.img.Publish()
	d, err := agenttest.NewDevice(t.TempDir(), agenttest.DeviceConfig{SlotSize: slotSize,
		SlotA: x.images["1.0"], SlotB: make([]byte, slotSize), BootLimit: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	x.d = d
	if err := verify.Provision(d.MetaDir, x.img.TrustedRoot(), x.dr.TrustedRoot(), trust.ChannelRelease); err != nil {
		t.Fatal(err)
	}
	x.dev = trust.Device{ID: "dev-0001", HardwareID: hardware, Channel: trust.ChannelRelease}
	x.srv = &agenttest.Server{Img: x.img, Dir: x.dr, Device: x.dev, PublicKey: x.key.Public().(ed25519.PublicKey)}
	// Factory provisioning: release 1's counter in both stores.
	if err := d.Counter().Advance(component, 1); err != nil {
		t.Fatal(err)
	}
	if c := x.counter(d); c != nil {
		if err := c.Advance(component, 1); err != nil {
			t.Fatal(err)
		}
	}
	return x
}

func (x *device) engine() *agent.Engine {
	x.t.Helper()
	v, err := verify.New(verify.Config{Device: x.dev, Dir: x.d.MetaDir,
		ImageURL: x.img.MetadataURL(), DirectorURL: x.dr.MetadataURL(), TargetsURL: x.img.TargetsURL(),
		Fetcher: trusttest.Mux{x.img, x.dr}, Now: x.clock.Now})
	if err != nil {
		x.t.Fatal(err)
	}
	var counter agent.Counter = x.d.Counter()
	if c := x.counter(x.d); c != nil {
		counter = c
	}
	var seed [32]byte
	seed[0] = byte(x.boots)
	e, err := agent.New(agent.Config{
		DeviceID: x.dev.ID, HardwareID: hardware, Signer: x.key,
		Server: x.srv, Verifier: &agent.TrustVerifier{V: v}, Fetcher: trusttest.Mux{x.img, x.dr},
		Bootloader: x.d.Boot, Slots: x.d.Slots,
		Installers: map[string]agent.Installer{component: &install.Raw{Slots: x.d.Slots}},
		Health:     healthy{},
		Counter:    counter, State: x.d.State,
		Reboot: func(context.Context) error { return nil },
		Factory: map[string]agent.Installed{component: {Target: releaseName(1), Version: "1.0",
			ReleaseCounter: 1, SHA256: sha(x.images["1.0"])}},
		Settings: deviceapi.Settings{UpdatesEnabled: true, Automatic: true, Notifications: true},
		Now:      x.clock.Now,
		Sleep:    func(context.Context, time.Duration) error { return nil },
		Rand:     rand.NewChaCha8(seed),
	})
	if err != nil {
		x.t.Fatal(err)
	}
	return e
}

// settle boots the device and polls until it has nothing left to do.
func (x *device) settle() {
	x.t.Helper()
	ctx := context.Background()
	for range 10 {
		x.boots++
		if _, err := x.d.Reboot(); err != nil {
			x.t.Fatalf("boot: %v", err)
		}
		if x.life(ctx) {
			return
		}
	}
	x.t.Fatal("device did not settle in 10 boots")
}

// life is one boot; it reports whether the device settled (false: it asked
// for a reboot).
func (x *device) life(ctx context.Context) bool {
	e := x.engine()
	defer e.Close()
	if err := e.Start(ctx); errors.Is(err, agent.ErrReboot) {
		return false
	} else if err != nil {
		x.t.Fatalf("start: %v", err)
	}
	for range 8 {
		_, err := e.Poll(ctx)
		if errors.Is(err, agent.ErrReboot) {
			return false
		}
		if err != nil {
			x.t.Fatalf("poll: %v", err)
		}
		st, err := e.Status(ctx)
		if err != nil {
			x.t.Fatal(err)
		}
		if st.Outbox == 0 && !st.Boot.Trial && st.Boot.Booted == st.Boot.Primary && (st.Tx == nil || st.Tx.State.Terminal()) {
			return true
		}
	}
	return false
}

type outcome struct {
	booted     string // slot the device runs
	holds      string // release that slot holds
	counter    uint64 // the engine's counter
	committed2 bool   // release 2 was reported committed
	rejected   string // reason of the last rejection event, if any
}

// restoreAttack runs the attack and returns where the device ended.
func (x *device) restoreAttack() outcome {
	x.t.Helper()
	// A first check-in with nothing assigned, so the journal exists.
	x.settle()
	snap := x.t.TempDir()
	copyDir(x.t, x.d.State.Dir, snap)

	x.srv.Assign(releaseName(3))
	x.settle()
	if got := x.state(); got.booted != "B" || got.holds != "3.0" || got.counter != 3 {
		x.t.Fatalf("after updating to release 3: %+v", got)
	}

	if err := os.RemoveAll(x.d.State.Dir); err != nil {
		x.t.Fatal(err)
	}
	copyDir(x.t, snap, x.d.State.Dir)
	x.srv.Assign(releaseName(2))
	x.settle()
	return x.state()
}

func (x *device) state() outcome {
	x.t.Helper()
	var o outcome
	o.booted = x.d.Boot.Booted
	b, err := x.d.Slots.Bytes(o.booted)
	if err != nil {
		x.t.Fatal(err)
	}
	for v, img := range x.images {
		if bytes.HasPrefix(b, img) {
			o.holds = v
		}
	}
	var c agent.Counter = x.d.Counter()
	if tc := x.counter(x.d); tc != nil {
		c = tc
	}
	if o.counter, err = c.Get(component); err != nil {
		x.t.Fatal(err)
	}
	for _, e := range x.srv.Received() {
		if e.Type == deviceapi.EventCommitted && e.Target == releaseName(2) {
			o.committed2 = true
		}
		if e.Type == deviceapi.EventRejected {
			o.rejected = e.Reason
		}
	}
	return o
}

type healthy struct{}

func (healthy) Check(context.Context) error { return nil }

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
