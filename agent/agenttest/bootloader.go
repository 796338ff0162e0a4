package agenttest

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/koshin-ota/koshin/agent"
)

// Env is the simulated bootloader environment, with U-Boot's variables.
type Env struct {
	Slot             string `json:"slot"`
	UpgradeAvailable bool   `json:"upgrade_available"`
	BootCount        int    `json:"bootcount"`
	BootLimit        int    `json:"bootlimit"`
}

// Bootloader is a simulated U-Boot with boot counting. Its environment is a
// JSON file, saved atomically (like a redundant U-Boot environment) at a
// power-cut point "bootenv save". Booted is the slot chosen by the last
// PowerOn, as the kernel command line would tell the running system.
type Bootloader struct {
	Path   string
	Inj    *Injector
	Names  [2]string
	Booted string
}

var _ agent.Bootloader = (*Bootloader)(nil)

// PowerOn runs the boot logic: with a trial armed, fall back to the other
// slot once bootcount reached bootlimit (what altbootcmd does: switch the
// slot, clear upgrade_available), else count this boot. It returns the slot
// booted.
func (b *Bootloader) PowerOn() (string, error) {
	b.Booted = ""
	env, err := b.Read()
	if err != nil {
		return "", err
	}
	if env.UpgradeAvailable {
		if env.BootCount >= env.BootLimit {
			env.Slot, env.UpgradeAvailable, env.BootCount = b.other(env.Slot), false, 0
		} else {
			env.BootCount++
		}
		if err := b.save(env); err != nil {
			return "", err
		}
	}
	b.Booted = env.Slot
	return env.Slot, nil
}

// Read returns the environment.
func (b *Bootloader) Read() (Env, error) {
	var env Env
	if err := b.Inj.Alive(); err != nil {
		return env, err
	}
	data, err := os.ReadFile(b.Path)
	if err != nil {
		return env, err
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return env, fmt.Errorf("agenttest: bootloader environment: %w", err)
	}
	return env, nil
}

// Write replaces the environment without a power-cut point (test setup).
func (b *Bootloader) Write(env Env) error {
	data, err := json.Marshal(env)
	if err != nil {
		return err
	}
	return replace(b.Path, data)
}

func (b *Bootloader) save(env Env) error {
	if err := b.Inj.Point("bootenv save"); err != nil {
		return err
	}
	return b.Write(env)
}

func (b *Bootloader) other(s string) string {
	if s == b.Names[0] {
		return b.Names[1]
	}
	return b.Names[0]
}

// State implements agent.Bootloader.
func (b *Bootloader) State() (agent.BootState, error) {
	env, err := b.Read()
	if err != nil {
		return agent.BootState{}, err
	}
	if b.Booted == "" {
		return agent.BootState{}, fmt.Errorf("agenttest: device not powered on")
	}
	return agent.BootState{Booted: b.Booted, Primary: env.Slot, Trial: env.UpgradeAvailable,
		BootCount: env.BootCount, BootLimit: env.BootLimit}, nil
}

// SetTrial implements agent.Bootloader.
func (b *Bootloader) SetTrial(slot string) error {
	return b.update(func(env *Env) { env.Slot, env.UpgradeAvailable, env.BootCount = slot, true, 0 })
}

// Commit implements agent.Bootloader.
func (b *Bootloader) Commit() error {
	return b.update(func(env *Env) { env.Slot, env.UpgradeAvailable, env.BootCount = b.Booted, false, 0 })
}

// Revert implements agent.Bootloader.
func (b *Bootloader) Revert(slot string) error {
	return b.update(func(env *Env) { env.Slot, env.UpgradeAvailable, env.BootCount = slot, false, 0 })
}

func (b *Bootloader) update(edit func(*Env)) error {
	env, err := b.Read()
	if err != nil {
		return err
	}
	edit(&env)
	return b.save(env)
}
