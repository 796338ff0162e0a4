package agenttest

import (
	"testing"

	"github.com/koshin-ota/koshin/agent"
)

// BootloaderHarness lets RunBootloaderSuite drive one agent.Bootloader
// implementation through boot cycles.
type BootloaderHarness struct {
	// New returns the bootloader under test on a fresh environment in
	// which slot A is committed; it has not booted yet.
	New func(t *testing.T) agent.Bootloader
	// PowerOn runs the real bootloader's boot logic on the environment
	// (what U-Boot or the GRUB script would do) and returns the slot it
	// booted; State must report that slot as Booted afterwards.
	PowerOn func(t *testing.T) string
	// BootLimit is how many boots a trial gets before the fallback.
	BootLimit int
}

// RunBootloaderSuite checks the semantics the engine relies on: trials,
// commits, fallbacks after BootLimit boots, and reverts, each idempotent
// (CCDS UPE13/UPE14). Every implementation of agent.Bootloader runs it.
func RunBootloaderSuite(t *testing.T, h BootloaderHarness) {
	t.Run("commit", func(t *testing.T) {
		b := h.New(t)
		boot(t, h, "A")
		want(t, b, agent.BootState{Booted: "A", Primary: "A"})
		for range 2 {
			must(t, b.SetTrial("B"))
			want(t, b, agent.BootState{Booted: "A", Primary: "B", Trial: true})
		}
		boot(t, h, "B")
		want(t, b, agent.BootState{Booted: "B", Primary: "B", Trial: true})
		for range 2 {
			must(t, b.Commit())
			want(t, b, agent.BootState{Booted: "B", Primary: "B"})
		}
		boot(t, h, "B")
	})
	t.Run("fallback", func(t *testing.T) {
		b := h.New(t)
		boot(t, h, "A")
		must(t, b.SetTrial("B"))
		for range h.BootLimit {
			boot(t, h, "B")
		}
		boot(t, h, "A")
		want(t, b, agent.BootState{Booted: "A", Primary: "A"})
		boot(t, h, "A")
	})
	t.Run("revert before reboot", func(t *testing.T) {
		b := h.New(t)
		boot(t, h, "A")
		must(t, b.SetTrial("B"))
		for range 2 {
			must(t, b.Revert("A"))
			want(t, b, agent.BootState{Booted: "A", Primary: "A"})
		}
		boot(t, h, "A")
	})
	t.Run("revert during trial", func(t *testing.T) {
		b := h.New(t)
		boot(t, h, "A")
		must(t, b.SetTrial("B"))
		boot(t, h, "B")
		for range 2 {
			must(t, b.Revert("A"))
			want(t, b, agent.BootState{Booted: "B", Primary: "A"})
		}
		boot(t, h, "A")
		want(t, b, agent.BootState{Booted: "A", Primary: "A"})
	})
}

func boot(t *testing.T, h BootloaderHarness, wantSlot string) {
	t.Helper()
	if got := h.PowerOn(t); got != wantSlot {
		t.Fatalf("booted %s, want %s", got, wantSlot)
	}
}

// want compares the fields the engine decides on (not the counters, whose
// scale differs between bootloaders).
func want(t *testing.T, b agent.Bootloader, w agent.BootState) {
	t.Helper()
	got, err := b.State()
	if err != nil {
		t.Fatal(err)
	}
	if got.Booted != w.Booted || got.Primary != w.Primary || got.Trial != w.Trial {
		t.Fatalf("state %+v, want booted %s primary %s trial %v", got, w.Booted, w.Primary, w.Trial)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
