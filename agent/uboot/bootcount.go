package uboot

import "fmt"

// Variables of U-Boot's boot counting (CONFIG_BOOTCOUNT_LIMIT with
// CONFIG_BOOTCOUNT_ENV) and of koshin's slot selection; see
// testdata/ab-boot.env for the bootcmd and altbootcmd that use them.
const (
	// VarBootcount is incremented by U-Boot on each boot while
	// VarUpgradeAvailable is non-zero.
	VarBootcount = "bootcount"
	// VarBootlimit: once bootcount exceeds it, U-Boot runs VarAltbootcmd
	// instead of bootcmd.
	VarBootlimit = "bootlimit"
	// VarUpgradeAvailable is 1 while a trial boot is being counted.
	VarUpgradeAvailable = "upgrade_available"
	// VarAltbootcmd is the fallback command run after too many boots.
	VarAltbootcmd = "altbootcmd"
	// DefaultSlotVar names the variable bootcmd reads to pick the slot.
	// The name is configurable; it must match the board's bootcmd.
	DefaultSlotVar = "koshin_slot"
)

// ArmTrial makes slot the one U-Boot boots next and starts counting boots, in
// memory; Save makes it take effect. It refuses (ErrNoFallback) when the
// environment lacks a non-zero bootlimit or an altbootcmd: U-Boot would then
// keep booting a failing slot forever (or stop at its prompt) instead of
// falling back (CCDS UPE13, UPE14).
func (e *Env) ArmTrial(slotVar, slot string) error {
	if slot == "" {
		return fmt.Errorf("%w: empty slot", ErrInvalidValue)
	}
	if e.ulong(VarBootlimit) == 0 {
		return fmt.Errorf("%w: %s is unset or zero", ErrNoFallback, VarBootlimit)
	}
	if v, _ := e.Get(VarAltbootcmd); v == "" {
		return fmt.Errorf("%w: %s is unset", ErrNoFallback, VarAltbootcmd)
	}
	return e.setMany(slotVar, slot, VarUpgradeAvailable, "1", VarBootcount, "0")
}

// Commit ends a trial: the running slot stays selected and U-Boot stops
// counting boots. Save makes it take effect.
func (e *Env) Commit() error {
	return e.setMany(VarUpgradeAvailable, "0", VarBootcount, "0")
}

// Revert abandons a trial and selects slot again without boot counting. It
// names the slot instead of flipping to the other one, so repeating it after
// a power cut cannot flip back. Save makes it take effect.
func (e *Env) Revert(slotVar, slot string) error {
	if slot == "" {
		return fmt.Errorf("%w: empty slot", ErrInvalidValue)
	}
	return e.setMany(slotVar, slot, VarUpgradeAvailable, "0", VarBootcount, "0")
}

// TrialPending reports whether U-Boot is counting boots of a trial slot.
func (e *Env) TrialPending() bool { return e.ulong(VarUpgradeAvailable) != 0 }

// BootCount returns the boots U-Boot has counted in the current trial.
func (e *Env) BootCount() uint64 { return e.ulong(VarBootcount) }

// BootLimit returns the boots U-Boot allows before running altbootcmd.
func (e *Env) BootLimit() uint64 { return e.ulong(VarBootlimit) }

// ulong reads a variable the way U-Boot's env_get_ulong(name, 10, 0) does:
// the leading decimal digits, 0 when unset or not a number.
func (e *Env) ulong(name string) uint64 {
	v, _ := e.Get(name)
	var n uint64
	for i := 0; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		n = n*10 + uint64(v[i]-'0')
	}
	return n
}
