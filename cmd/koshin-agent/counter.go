package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/tpm"
	"github.com/koshin-ota/koshin/trust"
)

// Counter types.
const (
	counterFile = "file"
	counterTPM  = "tpm"
)

// CounterConfig selects where the anti-rollback counter is kept.
type CounterConfig struct {
	// Type is "file" (default: two MAC'd copies in the state directory,
	// keyed with counter_key) or "tpm" (TPM 2.0 NV counters, which survive
	// the state directory being restored from an old copy).
	Type string `json:"type,omitempty"`
	// TPMDevice is the TPM character device (default /dev/tpmrm0, the
	// kernel's resource manager).
	TPMDevice string `json:"tpm_device,omitempty"`
	// TPMNVBase is the first of the 32 NV indices the counters use (two
	// per component, 16 components), in the owner range
	// 0x01800000–0x01BFFFFF; default 0x01804B00.
	TPMNVBase NVIndex `json:"tpm_nv_base,omitempty"`
	// TPMOwnerAuthFile holds the owner hierarchy's authorisation value,
	// needed only to define a component's indices (first start, at the
	// factory). Read if present; without it the owner authorisation is
	// empty.
	TPMOwnerAuthFile string `json:"tpm_owner_auth_file,omitempty"`
}

// NVIndex is a TPM NV index handle, written in JSON as a hex string
// ("0x01804B00") or a number.
type NVIndex uint32

// UnmarshalJSON accepts "0x…" strings and plain numbers.
func (n *NVIndex) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) != nil {
		var v uint32
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("NV index must be a string such as \"0x01804B00\" or a number")
		}
		*n = NVIndex(v)
		return nil
	}
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return fmt.Errorf("NV index %q: want a 32-bit number such as \"0x01804B00\"", s)
	}
	*n = NVIndex(v)
	return nil
}

// MarshalJSON writes the hex string form.
func (n NVIndex) MarshalJSON() ([]byte, error) { return json.Marshal(n.String()) }

func (n NVIndex) String() string { return fmt.Sprintf("%#08x", uint32(n)) }

func (c *CounterConfig) defaults() {
	if c.Type == "" {
		c.Type = counterFile
	}
	if c.TPMDevice == "" {
		c.TPMDevice = tpm.DefaultDevice
	}
	if c.TPMNVBase == 0 {
		c.TPMNVBase = NVIndex(tpm.DefaultBase)
	}
}

func (c *Config) validateCounter() []error {
	var errs []error
	cc := c.Counter
	switch cc.Type {
	case counterFile:
	case counterTPM:
		if !filepath.IsAbs(cc.TPMDevice) {
			errs = append(errs, fmt.Errorf("counter.tpm_device must be an absolute path such as %s, have %q", tpm.DefaultDevice, cc.TPMDevice))
		}
		if err := tpm.CheckOwnerRange(tpm2.TPMHandle(cc.TPMNVBase), tpm.DefaultSlots); err != nil {
			errs = append(errs, fmt.Errorf("counter.tpm_nv_base %v: %w", cc.TPMNVBase, err))
		}
		if f := cc.TPMOwnerAuthFile; f != "" && !filepath.IsAbs(f) {
			errs = append(errs, fmt.Errorf("counter.tpm_owner_auth_file must be an absolute path, have %q", f))
		}
		if n := len(c.Installers); n > tpm.DefaultSlots {
			errs = append(errs, fmt.Errorf("counter.type tpm holds %d components, have %d installers", tpm.DefaultSlots, n))
		}
	default:
		errs = append(errs, fmt.Errorf("counter.type must be file or tpm, have %q", cc.Type))
	}
	return errs
}

// openTPM opens the TPM device; tests point it at a simulator.
var openTPM = func(path string) (transport.TPMCloser, error) { return tpm.OpenDevice(path) }

// counterTakenUp marks, in the engine's state directory, that the file
// counter's values have been carried into the TPM.
const counterTakenUp = "counter.tpm.json"

type takenUp struct {
	NVBase NVIndex           `json:"nv_base"`
	Values map[string]uint64 `json:"values"`
}

// counter builds the anti-rollback counter the configuration selects. With
// a TPM it opens the device, defines the indices of every component that
// has none, and carries the file counter over (takeUp); the caller closes
// the returned closer (nil for the file counter) with the agent.
func (a *Agent) counter(state agent.StateFS, key []byte, factory map[string]agent.Installed) (agent.Counter, func() error, error) {
	file := &agent.FileCounter{FS: state, Key: key}
	cc := a.cfg.Counter
	if cc.Type != counterTPM {
		return file, nil, nil
	}
	var auth []byte
	if cc.TPMOwnerAuthFile != "" {
		b, err := os.ReadFile(cc.TPMOwnerAuthFile)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("counter.tpm_owner_auth_file: %w", err)
		}
		auth = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	conn, err := openTPM(cc.TPMDevice)
	if err != nil {
		return nil, nil, fmt.Errorf("anti-rollback counter: open TPM %s: %w", cc.TPMDevice, err)
	}
	c, err := tpm.New(conn, tpm.Options{Base: tpm2.TPMHandle(cc.TPMNVBase), OwnerAuth: auth})
	if err == nil {
		err = a.takeUp(c, file, state, factory)
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	if n := c.Retries(); n > 0 {
		a.log.Info("the TPM asked for commands to be repeated", "retries", n)
	}
	return c, conn.Close, nil
}

// takeUp runs at every start with the TPM counter. Each component the
// device knows of (configured installers, factory components and, until
// taken up, those in the file counter) gets its NV indices if it has none,
// starting at the highest value known for it: the file counter's, or the
// factory image's release counter. Then, once, every component's TPM
// counter is raised to the file counter's value, so that switching a device
// from file to tpm never lowers its counter; after that the file counter is
// no longer read (nor written), and a state directory restored from an
// older copy cannot lower anything: the TPM only goes up.
func (a *Agent) takeUp(c *tpm.Counter, file *agent.FileCounter, state agent.StateFS, factory map[string]agent.Installed) error {
	_, err := state.ReadFile(counterTakenUp)
	done := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("anti-rollback counter: %w", err)
	}
	names := map[string]bool{}
	for name := range a.cfg.Installers {
		names[name] = true
	}
	for name := range factory {
		names[name] = true
	}
	fromFile := map[string]uint64{}
	if !done {
		// Components only the file counter names count if their value
		// checks out (and is not 0): names alone take no NV slot.
		for _, name := range slices.Concat(slices.Collect(maps.Keys(names)), fileCounterNames(state)) {
			n, err := file.Get(name)
			if errors.Is(err, agent.ErrCorruptCounter) {
				return fmt.Errorf("anti-rollback counter: the file counter to carry into the TPM fails its integrity check (%w); "+
					"restore it, or remove %s/counter.0 and counter.1 to start the TPM counter from the factory values", err, a.cfg.dir(engineDir))
			}
			if err != nil {
				return fmt.Errorf("anti-rollback counter: read the file counter: %w", err)
			}
			if n > 0 {
				fromFile[name], names[name] = n, true
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		if trust.ValidateID("component", name) != nil {
			continue // not a component name: nothing can commit under it
		}
		start := max(fromFile[name], factory[name].ReleaseCounter)
		defined, err := c.Define(name, start)
		if err != nil {
			return fmt.Errorf("anti-rollback counter: define the TPM counter of %s (owner authorisation: counter.tpm_owner_auth_file): %w", name, err)
		}
		if defined {
			a.log.Info("TPM anti-rollback counter defined", "component", name, "value", start)
			continue
		}
		want := fromFile[name]
		cur, err := c.Get(name)
		if err != nil {
			return fmt.Errorf("anti-rollback counter: %w", err)
		}
		if cur >= want {
			continue
		}
		if err := c.Advance(name, want); err != nil {
			return fmt.Errorf("anti-rollback counter: raise the TPM counter of %s from %d to the file counter's %d: %w", name, cur, want, err)
		}
		a.log.Info("TPM anti-rollback counter raised to the file counter's value", "component", name, "from", cur, "to", want)
	}
	if done {
		return nil
	}
	b, err := json.Marshal(takenUp{NVBase: a.cfg.Counter.TPMNVBase, Values: fromFile})
	if err != nil {
		return err
	}
	if err := state.WriteFile(counterTakenUp, b); err != nil {
		return fmt.Errorf("anti-rollback counter: %w", err)
	}
	return nil
}

// fileCounterNames lists the components named in the file counter's
// copies, whatever their MAC says: only the names are taken from here, the
// values come from FileCounter.Get, which checks them.
func fileCounterNames(state agent.StateFS) []string {
	var out []string
	for _, f := range []string{"counter.0", "counter.1"} {
		b, err := state.ReadFile(f)
		if err != nil {
			continue
		}
		var rec struct {
			Counters map[string]json.RawMessage `json:"counters"`
		}
		if json.Unmarshal(b, &rec) == nil && len(rec.Counters) <= 64 {
			out = append(out, slices.Collect(maps.Keys(rec.Counters))...)
		}
	}
	return out
}
