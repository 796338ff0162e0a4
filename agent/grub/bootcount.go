package grub

import (
	"fmt"
	"regexp"
	"strings"
)

// Variables and values of koshin's GRUB A/B scheme; testdata/koshin-ab.cfg is
// the grub.cfg side.
const (
	// VarOrder lists the slots by preference, space-separated ("B A").
	VarOrder = "koshin_order"
	// TryNone (X_TRY): no trial pending; the slot boots when X_OK is 1.
	TryNone = "0"
	// TryArmed: one trial boot is allowed; GRUB turns it into TryTaken.
	TryArmed = "1"
	// TryTaken: GRUB booted the trial and the agent has not confirmed it;
	// GRUB skips the slot from now on.
	TryTaken = "2"
)

// OKVar names the variable saying whether slot may boot ("1").
func OKVar(slot string) string { return slot + "_OK" }

// TryVar names the trial state variable of slot.
func TryVar(slot string) string { return slot + "_TRY" }

// slotName keeps slot names usable as GRUB variable-name prefixes.
var slotName = regexp.MustCompile(`^[A-Za-z0-9]{1,16}$`)

func checkSlots(slots ...string) error {
	for _, s := range slots {
		if !slotName.MatchString(s) {
			return fmt.Errorf("%w: slot %q (want 1-16 letters or digits)", ErrInvalidValue, s)
		}
	}
	return nil
}

// ArmTrial makes slot the preferred slot for exactly one trial boot, keeping
// fallback bootable behind it. All variables change together; Save makes it
// take effect.
func (e *Env) ArmTrial(slot, fallback string) error {
	if err := checkSlots(slot, fallback); err != nil {
		return err
	}
	if slot == fallback {
		return fmt.Errorf("%w: trial and fallback slot are both %q", ErrInvalidValue, slot)
	}
	return e.setMany(OKVar(slot), "1", TryVar(slot), TryArmed, VarOrder, slot+" "+fallback)
}

// Commit confirms that slot, booted as a trial, is healthy: GRUB keeps
// booting it.
func (e *Env) Commit(slot string) error {
	if err := checkSlots(slot); err != nil {
		return err
	}
	return e.setMany(OKVar(slot), "1", TryVar(slot), TryNone)
}

// Disable stops GRUB from booting slot: before its contents are overwritten,
// and after a failed trial.
func (e *Env) Disable(slot string) error {
	if err := checkSlots(slot); err != nil {
		return err
	}
	return e.setMany(OKVar(slot), "0", TryVar(slot), TryNone)
}

// Revert makes slot the preferred, committed slot again and stops GRUB from
// booting abandoned. It names both slots, so repeating it after a power cut
// is harmless. All variables change together; Save makes it take effect.
func (e *Env) Revert(slot, abandoned string) error {
	if err := checkSlots(slot, abandoned); err != nil {
		return err
	}
	if slot == abandoned {
		return fmt.Errorf("%w: revert to the abandoned slot %q", ErrInvalidValue, slot)
	}
	return e.setMany(OKVar(slot), "1", TryVar(slot), TryNone,
		OKVar(abandoned), "0", TryVar(abandoned), TryNone, VarOrder, slot+" "+abandoned)
}

// NextSlot returns the slot testdata/koshin-ab.cfg boots next from this
// block, with the script's defaults for unset variables (order "A B", A
// bootable, B not).
func (e *Env) NextSlot() string {
	for _, slot := range strings.Fields(e.getOr(VarOrder, "A B")) {
		defOK := "0"
		if slot == "A" {
			defOK = "1"
		}
		if e.getOr(OKVar(slot), defOK) == "1" && e.TryState(slot) != TryTaken {
			return slot
		}
	}
	return "A" // the script's last resort
}

func (e *Env) getOr(name, def string) string {
	if v, ok := e.Get(name); ok {
		return v
	}
	return def
}

// TryState returns slot's trial state (TryNone when unset).
func (e *Env) TryState(slot string) string { return e.getOr(TryVar(slot), TryNone) }

// setMany applies name, value pairs all together or not at all.
func (e *Env) setMany(kv ...string) error {
	next := &Env{path: e.path, buf: e.buf, vars: e.vars}
	for i := 0; i+1 < len(kv); i += 2 {
		if err := next.Set(kv[i], kv[i+1]); err != nil {
			return err
		}
	}
	*e = *next
	return nil
}
