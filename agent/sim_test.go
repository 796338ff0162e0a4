package agent_test

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

	"github.com/klauspost/compress/zstd"
	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/agenttest"
	"github.com/koshin-ota/koshin/agent/install"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/koshin-ota/koshin/trust/verify"
)

const (
	hardware  = "board-a"
	component = "rootfs"
	slotSize  = 64 << 10
)

// world is the server side shared by simulated devices: an image
// repository holding the old (counter 1) and new (counter 2) release, and a
// director. Devices only read from it, so many scenarios share one world.
type world struct {
	clock      *trusttest.Clock
	img, dir   *trusttest.Repo
	oldImage   []byte // what slot A holds at the factory
	newImage   []byte // what slot B must hold after the update (plaintext)
	oldName    string
	newName    string
	compressed bool
	key        ed25519.PrivateKey
	contentKey []byte // of an encrypted release, if one was added
	// others are further signed images a slot may hold (by label).
	others map[string][]byte
}

func newWorld(tb testing.TB, compressed bool) *world {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	w := &world{clock: trusttest.NewClock(trusttest.Epoch), compressed: compressed,
		oldImage: image(rng, 40<<10), newImage: image(rng, 48<<10),
		oldName: "rootfs-1.img", newName: "rootfs-2.img",
		key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))}
	w.img = trusttest.NewRepo(tb, trusttest.Options{MetaHashes: true})
	w.dir = trusttest.NewDirector(tb, trusttest.Options{})
	payload := w.newImage
	if compressed {
		w.newName += ".zst"
		payload = compress(tb, w.newImage)
	}
	w.img.AddTarget(w.oldName, w.oldImage, custom(1))
	w.img.AddTarget(w.newName, payload, custom(2))
	w.img.Publish()
	return w
}

// image returns n bytes that compress somewhat, like a file system image.
func image(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 512 {
		if rng.IntN(2) == 0 {
			for j := i; j < min(i+512, n); j++ {
				b[j] = byte(rng.Uint32())
			}
		}
	}
	return b
}

func compress(tb testing.TB, b []byte) []byte {
	enc, err := zstd.NewWriter(nil, zstd.WithWindowSize(1<<20))
	if err != nil {
		tb.Fatal(err)
	}
	return enc.EncodeAll(b, nil)
}

func custom(counter uint64) *trust.TargetCustom {
	return &trust.TargetCustom{HardwareIDs: []string{hardware}, Component: component,
		ReleaseCounter: counter, Version: fmt.Sprintf("%d.0", counter), Channel: trust.ChannelRelease}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// sim is one simulated device talking to a world.
type sim struct {
	tb     testing.TB
	w      *world
	d      *agenttest.Device
	srv    *agenttest.Server
	fetch  *agenttest.Fetcher
	dev    trust.Device
	health agent.HealthCheck
	seed   uint64
	// tweak edits each engine's config (tests of single behaviours).
	tweak func(*agent.Config)
	boots int
	// again, if positive, arms a second cut that many points after the
	// power-on following the first.
	again int
	// hang, if set, says the image in the booted slot never starts the
	// agent (a kernel panic, a hung init): the watchdog resets the board.
	hang func(booted string) bool
	// watchdog configures the payload reader's throughput floor.
	watchdog verify.PayloadOptions
}

func (w *world) newSim(tb testing.TB, seed uint64, bootLimit int) *sim {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 99))
	dir, err := os.MkdirTemp(simRoot(), "koshin-sim-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	d, err := agenttest.NewDevice(dir, agenttest.DeviceConfig{SlotSize: slotSize,
		SlotA: w.oldImage, SlotB: image(rng, slotSize), BootLimit: bootLimit, Seed: seed})
	if err != nil {
		tb.Fatal(err)
	}
	// Factory provisioning: the committed image's counter (written
	// directly, outside the injector).
	if err := (&agent.FileCounter{FS: agent.DirFS(d.State.Dir)}).Advance(component, 1); err != nil {
		tb.Fatal(err)
	}
	if err := verify.Provision(d.MetaDir, w.img.TrustedRoot(), w.dir.TrustedRoot(), trust.ChannelRelease); err != nil {
		tb.Fatal(err)
	}
	dev := trust.Device{ID: "dev-0001", HardwareID: hardware, Channel: trust.ChannelRelease}
	s := &sim{tb: tb, w: w, d: d, dev: dev, seed: seed, health: healthFunc(nil),
		watchdog: verify.PayloadOptions{Now: w.clock.Now},
		srv:      &agenttest.Server{Img: w.img, Dir: w.dir, Device: dev, PublicKey: w.key.Public().(ed25519.PublicKey), Link: d.Inj},
		fetch:    &agenttest.Fetcher{F: trusttest.Mux{w.img, w.dir}, Chunk: 4 << 10, Link: d.Inj}}
	s.srv.Assign(w.newName)
	return s
}

// simRoot is where simulated devices keep their files: tmpfs when the
// machine has one. Durability is modelled by the injector, not the disk, and
// the real trust core fsyncs every metadata file it persists, which on a
// disk would make a thousand simulated updates take minutes.
func simRoot() string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if f, err := os.CreateTemp("/dev/shm", "koshin-probe-"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return "/dev/shm"
		}
	}
	return os.TempDir()
}

// cleanup removes the device's files (scenarios are many).
func (s *sim) cleanup() { os.RemoveAll(s.d.Dir) }

type healthFunc func(context.Context) error

func (h healthFunc) Check(ctx context.Context) error {
	if h == nil {
		return nil
	}
	return h(ctx)
}

// engine starts a fresh engine on the device's files, as after a boot.
func (s *sim) engine() *agent.Engine {
	s.tb.Helper()
	cfg := s.config()
	if s.tweak != nil {
		s.tweak(&cfg)
	}
	e, err := agent.New(cfg)
	if err != nil {
		s.tb.Fatal(err)
	}
	return e
}

// config wires an engine to the simulated device, the world's real
// verifier (with a power-cut point at its metadata refresh) and the fakes.
func (s *sim) config() agent.Config {
	s.tb.Helper()
	w := s.w
	v, err := verify.New(verify.Config{Device: s.dev, Dir: s.d.MetaDir,
		ImageURL: w.img.MetadataURL(), DirectorURL: w.dir.MetadataURL(), TargetsURL: w.img.TargetsURL(),
		Fetcher: trusttest.Mux{w.img, w.dir}, Now: w.clock.Now, WriteFile: s.d.WriteMetadata})
	if err != nil {
		s.tb.Fatal(err)
	}
	var seed [32]byte
	seed[0], seed[1] = byte(s.seed), byte(s.boots)
	return agent.Config{
		DeviceID: s.dev.ID, HardwareID: hardware, Signer: w.key,
		Server:     s.srv,
		Verifier:   &agenttest.Verifier{Verifier: &agent.TrustVerifier{V: v, Watchdog: s.watchdog}, Inj: s.d.Inj},
		Fetcher:    s.fetch,
		Bootloader: s.d.Boot, Slots: s.d.Slots,
		Installers: map[string]agent.Installer{component: &install.Raw{Slots: s.d.Slots}},
		Health:     s.health, Counter: s.d.Counter(), State: s.d.State,
		Reboot: func(context.Context) error { return nil },
		Factory: map[string]agent.Installed{component: {Target: w.oldName, Version: "1.0",
			ReleaseCounter: 1, SHA256: sha(w.oldImage)}},
		Settings: defaultSettings,
		// Checkpoints by bytes only, so that the write points are the same
		// in every run (the power-cut tests count them).
		CheckpointEvery:       8 << 10,
		CheckpointMinInterval: -1,
		Now:                   w.clock.Now,
		Sleep:                 func(context.Context, time.Duration) error { return nil },
		Rand:                  rand.NewChaCha8(seed),
	}
}

var errNotSettled = errors.New("engine did not settle")

// life is one boot: start an engine and poll until the device settles, a
// reboot is requested, or power fails.
func (s *sim) life(ctx context.Context) error {
	e := s.engine()
	defer e.Close()
	if err := e.Start(ctx); err != nil {
		return err
	}
	for range 8 {
		if _, err := e.Poll(ctx); err != nil {
			return err
		}
		st, err := e.Status(ctx)
		if err != nil {
			return err
		}
		if settled(st) {
			return nil
		}
	}
	return errNotSettled
}

func settled(st agent.Status) bool {
	return st.Tx != nil && st.Tx.State.Terminal() && st.Outbox == 0 &&
		!st.Boot.Trial && st.Boot.Booted == st.Boot.Primary
}

// converge boots the device until it settles, checking the boot invariants
// after every power-on. A power cut (whenever the injector fires) is
// followed by a plain power-on, a requested reboot by a clean one.
func (s *sim) converge(ctx context.Context) {
	s.tb.Helper()
	clean := false
	for s.boots = 0; s.boots < 40; s.boots++ {
		var booted string
		var err error
		if clean {
			booted, err = s.d.Reboot()
		} else {
			booted, err = s.d.PowerOn()
		}
		if errors.Is(err, agenttest.ErrPowerCut) {
			clean = false
			continue
		}
		if err != nil {
			s.tb.Fatalf("boot: %v", err)
		}
		s.checkBoot(booted)
		if s.hang != nil && s.hang(booted) {
			clean = false
			continue
		}
		if s.again > 0 && s.d.Inj.Cuts() > 0 {
			// First power-on after the first cut: arm the second.
			s.d.Inj.CutAt(s.d.Inj.Count() + s.again)
			s.again = 0
		}
		err = s.life(ctx)
		switch {
		case err == nil:
			return
		case errors.Is(err, agent.ErrReboot):
			clean = true
		case errors.Is(err, agenttest.ErrPowerCut):
			clean = false
		default:
			s.tb.Fatalf("boot %d: %v\npoints: %v", s.boots, err, tail(s.d.Inj.Names(), 8))
		}
	}
	s.tb.Fatalf("no convergence after %d boots", s.boots)
}

func tail(s []string, n int) []string { return s[max(0, len(s)-n):] }
