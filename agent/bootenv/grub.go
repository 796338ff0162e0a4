package bootenv

import (
	"fmt"
	"strings"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/grub"
)

// GRUB is an agent.Bootloader on a GRUB environment block with koshin's
// *_OK/*_TRY scheme (agent/grub/testdata/koshin-ab.cfg). GRUB script cannot
// count, so a trial gets exactly one boot: BootLimit is 1.
type GRUB struct {
	Path string // grubenv
	// Slots are the two slot names (default A and B).
	Slots [2]string
	// Booted returns the running slot (see BootedFromCmdline).
	Booted func() (string, error)
}

var _ agent.Bootloader = (*GRUB)(nil)

func (g *GRUB) slots() [2]string {
	if g.Slots == [2]string{} {
		return [2]string{"A", "B"}
	}
	return g.Slots
}

func (g *GRUB) other(slot string) (string, error) {
	s := g.slots()
	switch slot {
	case s[0]:
		return s[1], nil
	case s[1]:
		return s[0], nil
	}
	return "", fmt.Errorf("bootenv: unknown slot %q", slot)
}

// State maps the flags onto U-Boot's model. A slot whose trial is armed, or
// taken and running, is the primary and the boot is a trial. A trial taken
// while another slot runs means GRUB has fallen back: NextSlot already
// skips the abandoned slot, which is how U-Boot shows a fallback too (old
// slot selected, no counting).
func (g *GRUB) State() (agent.BootState, error) {
	booted, err := g.Booted()
	if err != nil {
		return agent.BootState{}, err
	}
	env, err := grub.Read(g.Path)
	if err != nil {
		return agent.BootState{}, err
	}
	st := agent.BootState{Booted: booted, Primary: env.NextSlot(), BootLimit: 1}
	trial := g.trialSlot(env)
	switch {
	case trial == "":
	case env.TryState(trial) == grub.TryArmed:
		st.Primary, st.Trial = trial, true
	case trial == booted:
		st.Primary, st.Trial, st.BootCount = trial, true, 1
	}
	return st, nil
}

// trialSlot is the first slot in the boot order with a trial armed or
// taken.
func (g *GRUB) trialSlot(env *grub.Env) string {
	order, ok := env.Get(grub.VarOrder)
	if !ok {
		s := g.slots()
		order = strings.Join(s[:], " ")
	}
	for _, s := range strings.Fields(order) {
		if t := env.TryState(s); t == grub.TryArmed || t == grub.TryTaken {
			return s
		}
	}
	return ""
}

// SetTrial arms one trial boot of slot, the other slot staying bootable
// behind it.
func (g *GRUB) SetTrial(slot string) error {
	fallback, err := g.other(slot)
	if err != nil {
		return err
	}
	return g.edit(func(env *grub.Env) error { return env.ArmTrial(slot, fallback) })
}

// Commit confirms the running slot.
func (g *GRUB) Commit() error {
	booted, err := g.Booted()
	if err != nil {
		return err
	}
	return g.edit(func(env *grub.Env) error { return env.Commit(booted) })
}

// Revert makes slot the committed slot again and disables the other one.
func (g *GRUB) Revert(slot string) error {
	abandoned, err := g.other(slot)
	if err != nil {
		return err
	}
	return g.edit(func(env *grub.Env) error { return env.Revert(slot, abandoned) })
}

func (g *GRUB) edit(change func(*grub.Env) error) error {
	env, err := grub.Read(g.Path)
	if err != nil {
		return err
	}
	if err := change(env); err != nil {
		return err
	}
	return env.Save()
}
