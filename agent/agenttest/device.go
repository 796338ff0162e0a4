package agenttest

import (
	"context"
	"os"
	"path/filepath"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/internal/atomicfile"
)

// Device is a simulated device: bootloader environment, two slots and a
// state directory under Dir, all behind one Injector.
type Device struct {
	Dir   string
	Inj   *Injector
	Boot  *Bootloader
	Slots *Slots
	State *FS
	// MetaDir is the trust core's metadata directory (written by the real
	// verifier, outside the injector; see Verifier).
	MetaDir string
}

// DeviceConfig describes a new simulated device.
type DeviceConfig struct {
	SlotSize     int64
	SlotA, SlotB []byte // initial content; A is booted and committed
	BootLimit    int
	Seed         uint64
}

// NewDevice creates the device's files under dir. It is powered off; call
// PowerOn.
func NewDevice(dir string, c DeviceConfig) (*Device, error) {
	inj := NewInjector(c.Seed)
	d := &Device{Dir: dir, Inj: inj, MetaDir: filepath.Join(dir, "meta")}
	for _, sub := range []string{"state", "meta"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	d.State = &FS{Dir: filepath.Join(dir, "state"), Inj: inj}
	slots, err := NewSlots(dir, c.SlotSize, inj, c.SlotA, c.SlotB)
	if err != nil {
		return nil, err
	}
	d.Slots = slots
	d.Boot = &Bootloader{Path: filepath.Join(dir, "bootenv.json"), Inj: inj, Names: slots.Names()}
	if err := d.Boot.Write(Env{Slot: "A", BootLimit: c.BootLimit}); err != nil {
		return nil, err
	}
	return d, nil
}

// PowerOn boots: power comes back, the bootloader picks the slot.
func (d *Device) PowerOn() (string, error) {
	d.Inj.Revive()
	return d.Boot.PowerOn()
}

// Reboot is a clean reboot (the kernel flushes its caches first).
func (d *Device) Reboot() (string, error) {
	if err := d.Inj.FlushAll(); err != nil {
		return "", err
	}
	return d.PowerOn()
}

// WriteMetadata is the trust core's metadata write (verify.Config.WriteFile)
// with a power-cut point before each file, so every persisted metadata file
// is a cut point of its own. The write itself is atomic (temp file, fsync,
// rename, fsync dir): a cut before it leaves the previous file.
func (d *Device) WriteMetadata(name string, data []byte, perm os.FileMode) error {
	if err := d.Inj.Point("metadata write " + filepath.Base(name)); err != nil {
		return err
	}
	return atomicfile.WriteFile(name, data, perm)
}

// Counter is the device's file counter, read through the device's state FS.
func (d *Device) Counter() *agent.FileCounter { return &agent.FileCounter{FS: d.State} }

// Verifier wraps a verifier so that its metadata refresh is a power-cut
// point ("metadata write"): the trust core persists refreshed metadata
// itself, atomically per file, outside this package's reach, so the cut is
// modelled as happening as the refresh starts.
type Verifier struct {
	agent.Verifier
	Inj *Injector
}

// Check is a power-cut point, then the wrapped Check.
func (v *Verifier) Check(ctx context.Context, director []byte, nonce string, installed map[string]uint64) ([]agent.Target, error) {
	if err := v.Inj.Point("metadata write"); err != nil {
		return nil, err
	}
	return v.Verifier.Check(ctx, director, nonce, installed)
}
