package agent

// BootState is what the bootloader says about the current boot.
type BootState struct {
	// Booted is the slot the running system was booted from.
	Booted string
	// Primary is the slot the bootloader will boot next (U-Boot: the slot
	// variable; GRUB: the default entry).
	Primary string
	// Trial is set while boot counting is armed (U-Boot upgrade_available=1):
	// the bootloader falls back to the other slot once BootCount reaches
	// BootLimit.
	Trial     bool
	BootCount int
	BootLimit int
}

// Bootloader switches between the A and B slots with boot counting, so a new
// image that never comes up healthy is abandoned by the bootloader itself
// (EN 303 645 5.3-4, CCDS UPE13/UPE14). Every method is idempotent, because
// after a power cut the engine repeats the step it may or may not have
// completed; each setter writes the environment exactly once, atomically
// (redundant U-Boot environment, GRUB environment block).
type Bootloader interface {
	// State reads the environment and the booted slot.
	State() (BootState, error)
	// SetTrial arms a trial boot of slot: the next boot tries it with boot
	// counting (slot variable = slot, upgrade_available=1, bootcount=0).
	SetTrial(slot string) error
	// Commit makes the booted slot permanent (upgrade_available=0,
	// bootcount=0).
	Commit() error
	// Revert abandons a trial and makes slot, the last committed one,
	// primary again (slot variable = slot, upgrade_available=0,
	// bootcount=0). It names the slot instead of flipping to "the other"
	// one so that repeating it after a power cut cannot flip back.
	Revert(slot string) error
}
