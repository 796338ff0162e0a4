package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/bootenv"
	"github.com/koshin-ota/koshin/agent/install"
	"github.com/koshin-ota/koshin/agent/uboot"
	"github.com/koshin-ota/koshin/internal/atomicfile"
)

// bootloader builds the bootloader integration and the slot pair.
func (a *Agent) bootloader() (agent.Bootloader, install.FileSlots, error) {
	b := a.cfg.Bootloader
	slots := install.FileSlots{A: a.cfg.Slots.A, B: a.cfg.Slots.B}
	booted := bootenv.BootedFromCmdline(b.Cmdline)
	switch b.Type {
	case "uboot":
		f, err := os.Open(b.FwEnvConfig)
		if err != nil {
			return nil, slots, fmt.Errorf("bootloader: %w", err)
		}
		defer f.Close()
		env, err := uboot.ParseFwEnvConfig(f)
		if err != nil {
			return nil, slots, fmt.Errorf("bootloader: %w", err)
		}
		// Shared with fw_printenv/fw_setenv, so the two never interleave.
		env.LockPath = uboot.DefaultLockPath
		return &bootenv.UBoot{Env: env, SlotVar: b.SlotVar, Booted: booted}, slots, nil
	case "grub":
		return &bootenv.GRUB{Path: b.Grubenv, Booted: booted}, slots, nil
	case "sim":
		s := &simBootloader{path: b.Env}
		if err := s.powerOn(); err != nil {
			return nil, slots, err
		}
		return s, slots, nil
	}
	return nil, slots, fmt.Errorf("bootloader type %q", b.Type)
}

// installers builds the install handler of every configured component.
func (a *Agent) installers(slots agent.SlotSet) (map[string]agent.Installer, error) {
	out := map[string]agent.Installer{}
	for name, in := range a.cfg.Installers {
		work := filepath.Join(a.cfg.dir(workDir), name)
		switch in.Type {
		case "raw":
			out[name] = &install.Raw{Slots: slots}
		case "archive":
			out[name] = &install.Archive{Root: in.Root, Work: work}
		case "module":
			out[name] = &install.Module{Path: in.Path, Work: work, Timeout: time.Duration(in.Timeout)}
		default:
			return nil, fmt.Errorf("installer %s: type %q", name, in.Type)
		}
	}
	return out, nil
}

// simEnv is the simulated bootloader's environment, with U-Boot's
// boot-counting variables.
type simEnv struct {
	Slot             string `json:"slot"`
	UpgradeAvailable bool   `json:"upgrade_available"`
	BootCount        int    `json:"bootcount"`
	BootLimit        int    `json:"bootlimit"`
}

// simBootloader is a file-backed U-Boot simulation for the fleet simulator
// and end-to-end tests on machines without a real bootloader. Every agent
// start counts as a power-on: it runs the boot-counting logic once and
// records the slot "booted". Never use it on a device.
type simBootloader struct {
	path   string
	booted string
}

var _ agent.Bootloader = (*simBootloader)(nil)

func (s *simBootloader) read() (simEnv, error) {
	env := simEnv{Slot: "A", BootLimit: 3}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return env, nil
	}
	if err != nil {
		return env, err
	}
	if err := json.Unmarshal(b, &env); err != nil || (env.Slot != "A" && env.Slot != "B") {
		return env, fmt.Errorf("sim bootloader %s: damaged", s.path)
	}
	return env, nil
}

func (s *simBootloader) write(env simEnv) error {
	b, err := json.Marshal(env)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(s.path, b, 0o600)
}

// powerOn is what U-Boot's boot counting does at power-on.
func (s *simBootloader) powerOn() error {
	env, err := s.read()
	if err != nil {
		return err
	}
	if env.UpgradeAvailable {
		if env.BootCount >= env.BootLimit {
			env.Slot = map[string]string{"A": "B", "B": "A"}[env.Slot]
			env.UpgradeAvailable, env.BootCount = false, 0
		} else {
			env.BootCount++
		}
	}
	if err := s.write(env); err != nil {
		return err
	}
	s.booted = env.Slot
	return nil
}

func (s *simBootloader) State() (agent.BootState, error) {
	env, err := s.read()
	if err != nil {
		return agent.BootState{}, err
	}
	return agent.BootState{Booted: s.booted, Primary: env.Slot, Trial: env.UpgradeAvailable,
		BootCount: env.BootCount, BootLimit: env.BootLimit}, nil
}

func (s *simBootloader) SetTrial(slot string) error {
	return s.edit(func(e *simEnv) { e.Slot, e.UpgradeAvailable, e.BootCount = slot, true, 0 })
}

func (s *simBootloader) Commit() error {
	return s.edit(func(e *simEnv) { e.Slot, e.UpgradeAvailable, e.BootCount = s.booted, false, 0 })
}

func (s *simBootloader) Revert(slot string) error {
	return s.edit(func(e *simEnv) { e.Slot, e.UpgradeAvailable, e.BootCount = slot, false, 0 })
}

func (s *simBootloader) edit(f func(*simEnv)) error {
	env, err := s.read()
	if err != nil {
		return err
	}
	f(&env)
	return s.write(env)
}
