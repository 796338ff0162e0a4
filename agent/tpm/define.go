package tpm

import (
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/koshin-ota/koshin/trust"
)

// The owner hierarchy's NV index range in the TCG handle registry, where
// koshin's indices belong (the platform and TPM manufacturer ranges below it
// and the TCG range above it are someone else's).
const (
	OwnerNVFirst tpm2.TPMHandle = 0x01800000
	OwnerNVLast  tpm2.TPMHandle = 0x01BFFFFF
)

// CheckOwnerRange reports whether the 2*slots indices from base lie in the
// owner NV range (slots 0 means DefaultSlots).
func CheckOwnerRange(base tpm2.TPMHandle, slots int) error {
	if slots == 0 {
		slots = DefaultSlots
	}
	if slots < 0 || slots > 1<<16 {
		return fmt.Errorf("tpm: %d NV slots out of range", slots)
	}
	last := uint64(base) + 2*uint64(slots) - 1
	if base < OwnerNVFirst || last > uint64(OwnerNVLast) {
		return fmt.Errorf("tpm: NV indices %#08x–%#08x (%d slots of 2) are not all in the owner range %#08x–%#08x",
			uint32(base), last, slots, uint32(OwnerNVFirst), uint32(OwnerNVLast))
	}
	return nil
}

// Define gives component its NV slot now, at value start, if it has none
// yet, and reports whether it did; a component that has a slot keeps it
// and its value (raise that with Advance). Defining needs
// Options.OwnerAuth: an agent that defines its components when it starts
// (first at the factory) finds out there, and never needs the owner's
// authorisation at a commit. Unlike Advance, Define takes start 0 too;
// later values then climb from start one increment at a time, at most
// MaxIncrements per Advance.
func (c *Counter) Define(component string, start uint64) (bool, error) {
	if err := trust.ValidateID("component", component); err != nil {
		return false, err
	}
	if start > trust.MaxReleaseCounter {
		return false, fmt.Errorf("%w: counter %d out of range", trust.ErrInvalid, start)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s, err := c.find(component)
	if err != nil || s != nil {
		return false, err
	}
	if _, err := c.provision(component, start); err != nil {
		return false, err
	}
	return true, nil
}
