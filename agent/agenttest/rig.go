package agenttest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/install"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/koshin-ota/koshin/trust/verify"
)

// Rig constants: the simulated board and its one A/B component.
const (
	RigHardware  = "board-a"
	RigComponent = "rootfs"
	RigSlotSize  = 64 << 10
)

// Rig is a simulated device wired to a real engine and a real verifier,
// with its server side: an image repository holding the factory release
// (counter 1, in slot A) and a new one (counter 2), an honest director and
// a fake update server that assigns the new release. Tests of the layers
// above the engine (local control API, offline bundles) start from it.
type Rig struct {
	TB       testing.TB
	Clock    *trusttest.Clock
	Img, Dir *trusttest.Repo
	OldImage []byte
	NewImage []byte
	OldName  string
	NewName  string
	Key      ed25519.PrivateKey
	Dev      trust.Device
	Device   *Device
	Server   *Server
	// Health, if set, is the health check on the new image.
	Health func(context.Context) error
	// Tweak, if set, edits each engine's configuration.
	Tweak func(*agent.Config)
	// Reboots counts the reboots the engines asked for.
	Reboots int
}

// NewRig builds a rig in a test directory, the device powered off.
func NewRig(tb testing.TB, seed uint64) *Rig {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	r := &Rig{TB: tb, Clock: trusttest.NewClock(trusttest.Epoch),
		OldImage: randomBytes(rng, 40<<10), NewImage: randomBytes(rng, 48<<10),
		OldName: "rootfs-1.img", NewName: "rootfs-2.img",
		Key: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(seed)}, 32)),
		Dev: trust.Device{ID: "dev-0001", HardwareID: RigHardware, Channel: trust.ChannelRelease}}
	r.Img = trusttest.NewRepo(tb, trusttest.Options{MetaHashes: true})
	r.Dir = trusttest.NewDirector(tb, trusttest.Options{})
	r.Img.AddTarget(r.OldName, r.OldImage, RigCustom(1))
	r.Img.AddTarget(r.NewName, r.NewImage, RigCustom(2))
	r.Img.Publish()
	d, err := NewDevice(tb.TempDir(), DeviceConfig{SlotSize: RigSlotSize, SlotA: r.OldImage,
		SlotB: randomBytes(rng, RigSlotSize), BootLimit: 3, Seed: seed})
	if err != nil {
		tb.Fatal(err)
	}
	r.Device = d
	if err := (&agent.FileCounter{FS: agent.DirFS(d.State.Dir)}).Advance(RigComponent, 1); err != nil {
		tb.Fatal(err)
	}
	if err := verify.Provision(d.MetaDir, r.Img.TrustedRoot(), r.Dir.TrustedRoot(), trust.ChannelRelease); err != nil {
		tb.Fatal(err)
	}
	r.Server = &Server{Img: r.Img, Dir: r.Dir, Device: r.Dev, PublicKey: r.Key.Public().(ed25519.PublicKey), Link: d.Inj}
	r.Server.Assign(r.NewName)
	return r
}

// RigCustom is the signed custom object of the rig's release counter n.
func RigCustom(n uint64) *trust.TargetCustom {
	return &trust.TargetCustom{HardwareIDs: []string{RigHardware}, Component: RigComponent,
		ReleaseCounter: n, Version: fmt.Sprintf("%d.0", n), Channel: trust.ChannelRelease}
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// SHA256 is the hex digest of b.
func SHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Config wires an engine to the device, the real verifier and the fake
// server; time stands still unless the test moves Clock.
func (r *Rig) Config() agent.Config {
	r.TB.Helper()
	v, err := verify.New(verify.Config{Device: r.Dev, Dir: r.Device.MetaDir,
		ImageURL: r.Img.MetadataURL(), DirectorURL: r.Dir.MetadataURL(), TargetsURL: r.Img.TargetsURL(),
		Fetcher: trusttest.Mux{r.Img, r.Dir}, Now: r.Clock.Now})
	if err != nil {
		r.TB.Fatal(err)
	}
	health := agent.HealthCheck(healthFunc(r.Health))
	cfg := agent.Config{
		DeviceID: r.Dev.ID, HardwareID: RigHardware, Signer: r.Key,
		Server: r.Server, Verifier: &agent.TrustVerifier{V: v, Watchdog: verify.PayloadOptions{Now: r.Clock.Now}},
		Fetcher: &Fetcher{F: trusttest.Mux{r.Img, r.Dir}, Link: r.Device.Inj}, Bootloader: r.Device.Boot, Slots: r.Device.Slots,
		Installers: map[string]agent.Installer{RigComponent: &install.Raw{Slots: r.Device.Slots}},
		Health:     health, Counter: r.Device.Counter(), State: r.Device.State,
		Reboot: func(context.Context) error { r.Reboots++; return nil },
		Factory: map[string]agent.Installed{RigComponent: {Target: r.OldName, Version: "1.0",
			ReleaseCounter: 1, SHA256: SHA256(r.OldImage)}},
		Settings: deviceapi.Settings{UpdatesEnabled: true, Automatic: true, Notifications: true},
		Now:      r.Clock.Now,
		Sleep:    func(context.Context, time.Duration) error { return nil },
	}
	if r.Tweak != nil {
		r.Tweak(&cfg)
	}
	return cfg
}

// Boot reboots the device cleanly and starts a fresh engine on it, as
// after a reboot; the engine is closed when the test ends.
func (r *Rig) Boot() *agent.Engine {
	r.TB.Helper()
	if _, err := r.Device.Reboot(); err != nil {
		r.TB.Fatal(err)
	}
	e, err := agent.New(r.Config())
	if err != nil {
		r.TB.Fatal(err)
	}
	r.TB.Cleanup(func() { e.Close() })
	if err := e.Start(context.Background()); err != nil && err != agent.ErrReboot {
		r.TB.Fatalf("start: %v", err)
	}
	return e
}

// Env returns the bootloader environment.
func (r *Rig) Env() Env {
	r.TB.Helper()
	env, err := r.Device.Boot.Read()
	if err != nil {
		r.TB.Fatal(err)
	}
	return env
}

type healthFunc func(context.Context) error

func (h healthFunc) Check(ctx context.Context) error {
	if h == nil {
		return nil
	}
	return h(ctx)
}
