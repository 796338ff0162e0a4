package bootenv

import (
	"fmt"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/uboot"
)

// UBoot is an agent.Bootloader on a U-Boot environment with boot counting
// (CONFIG_BOOTCOUNT_LIMIT, CONFIG_BOOTCOUNT_ENV and an altbootcmd that
// switches the slot back; see agent/uboot/testdata/ab-boot.env). Use a
// redundant environment: only that makes each save power-safe.
type UBoot struct {
	Env uboot.Config
	// SlotVar is the variable bootcmd reads (default uboot.DefaultSlotVar).
	SlotVar string
	// Booted returns the running slot (see BootedFromCmdline).
	Booted func() (string, error)
}

var _ agent.Bootloader = (*UBoot)(nil)

func (u *UBoot) slotVar() string {
	if u.SlotVar == "" {
		return uboot.DefaultSlotVar
	}
	return u.SlotVar
}

// State reads the environment.
func (u *UBoot) State() (agent.BootState, error) {
	booted, err := u.Booted()
	if err != nil {
		return agent.BootState{}, err
	}
	env, err := uboot.Open(u.Env)
	if err != nil {
		return agent.BootState{}, err
	}
	primary, _ := env.Get(u.slotVar())
	if primary == "" {
		return agent.BootState{}, fmt.Errorf("bootenv: %s is not set in the U-Boot environment", u.slotVar())
	}
	return agent.BootState{Booted: booted, Primary: primary, Trial: env.TrialPending(),
		BootCount: clamp(env.BootCount()), BootLimit: clamp(env.BootLimit())}, nil
}

// SetTrial arms a counted trial boot of slot.
func (u *UBoot) SetTrial(slot string) error {
	return u.edit(func(env *uboot.Env) error { return env.ArmTrial(u.slotVar(), slot) })
}

// Commit makes the running slot permanent.
func (u *UBoot) Commit() error {
	booted, err := u.Booted()
	if err != nil {
		return err
	}
	return u.edit(func(env *uboot.Env) error {
		// Name the running slot explicitly: commit what runs, never
		// whatever the variable happens to say.
		if err := env.Set(u.slotVar(), booted); err != nil {
			return err
		}
		return env.Commit()
	})
}

// Revert selects slot again without boot counting.
func (u *UBoot) Revert(slot string) error {
	return u.edit(func(env *uboot.Env) error { return env.Revert(u.slotVar(), slot) })
}

func (u *UBoot) edit(change func(*uboot.Env) error) error {
	env, err := uboot.Open(u.Env)
	if err != nil {
		return err
	}
	if err := change(env); err != nil {
		return err
	}
	return env.Save()
}

func clamp(n uint64) int { return int(min(n, 1<<30)) }
