package grub_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/agent/grub"
)

// boot models testdata/koshin-ab.cfg: it returns the slot GRUB boots and
// applies the script's save_env to e.
func boot(t *testing.T, e *grub.Env) string {
	t.Helper()
	get := func(name, def string) string {
		if v, ok := e.Get(name); ok {
			return v
		}
		return def
	}
	defOK := map[string]string{"A": "1", "B": "0"}
	for _, slot := range strings.Fields(get(grub.VarOrder, "A B")) {
		ok, try := get(grub.OKVar(slot), defOK[slot]), get(grub.TryVar(slot), "0")
		if ok != "1" || try == grub.TryTaken {
			continue
		}
		if try == grub.TryArmed {
			mustSet(t, e, grub.TryVar(slot), grub.TryTaken)
		}
		return slot
	}
	return "A"
}

func TestTrialCommitted(t *testing.T) {
	e := grub.Create(filepath.Join(t.TempDir(), "grubenv"))
	if got := boot(t, e); got != "A" {
		t.Fatalf("fresh env boots %s, want A", got)
	}
	if err := e.ArmTrial("B", "A"); err != nil {
		t.Fatal(err)
	}
	if got := boot(t, e); got != "B" {
		t.Fatalf("armed trial boots %s, want B", got)
	}
	if e.TryState("B") != grub.TryTaken {
		t.Fatalf("B_TRY %q after trial boot", e.TryState("B"))
	}
	if err := e.Commit("B"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got := boot(t, e); got != "B" {
			t.Fatalf("committed slot: boots %s, want B", got)
		}
	}
}

func TestTrialFailsBack(t *testing.T) {
	e := grub.Create(filepath.Join(t.TempDir(), "grubenv"))
	if err := e.ArmTrial("B", "A"); err != nil {
		t.Fatal(err)
	}
	boot(t, e) // trial boot of B never confirms
	if got := boot(t, e); got != "A" {
		t.Fatalf("after unconfirmed trial: boots %s, want A", got)
	}
	// The agent, running on A, sees the failed trial and disables B.
	if e.TryState("B") != grub.TryTaken {
		t.Fatalf("B_TRY %q, want %q", e.TryState("B"), grub.TryTaken)
	}
	if err := e.Disable("B"); err != nil {
		t.Fatal(err)
	}
	if got := boot(t, e); got != "A" || e.TryState("B") != grub.TryNone {
		t.Fatalf("after Disable: boots %s, B_TRY %q", got, e.TryState("B"))
	}
}

func TestBootHelpersValidate(t *testing.T) {
	e := grub.Create(filepath.Join(t.TempDir(), "grubenv"))
	before := e.Bytes()
	for _, err := range []error{
		e.ArmTrial("B", "B"),
		e.ArmTrial("B", ""),
		e.ArmTrial("B=1", "A"),
		e.Commit("a b"),
		e.Disable(strings.Repeat("x", 17)),
	} {
		if !errors.Is(err, grub.ErrInvalidValue) {
			t.Errorf("err %v, want ErrInvalidValue", err)
		}
	}
	if string(e.Bytes()) != string(before) {
		t.Fatal("refused helpers changed the block")
	}
}

// ArmTrial changes all of its variables or none.
func TestArmTrialAtomic(t *testing.T) {
	e := grub.Create(filepath.Join(t.TempDir(), "grubenv"))
	// Leave room for B_OK and B_TRY but not for koshin_order.
	room := grub.BlockSize - len(header) - len("B_OK=1\nB_TRY=1\nfill=\n") - len("koshin_order=B A\n") + 1
	mustSet(t, e, "fill", strings.Repeat("x", room))
	before := e.Bytes()
	if err := e.ArmTrial("B", "A"); !errors.Is(err, grub.ErrTooLarge) {
		t.Fatalf("err %v, want ErrTooLarge", err)
	}
	if string(e.Bytes()) != string(before) {
		t.Fatal("half-applied ArmTrial")
	}
}

// NextSlot agrees with the model of the script in every state the helpers
// produce.
func TestNextSlotMatchesScript(t *testing.T) {
	steps := []func(e *grub.Env) error{
		func(e *grub.Env) error { return nil },
		func(e *grub.Env) error { return e.ArmTrial("B", "A") },
		func(e *grub.Env) error { boot(t, e); return nil },
		func(e *grub.Env) error { boot(t, e); return nil },
		func(e *grub.Env) error { return e.Revert("A", "B") },
		func(e *grub.Env) error { return e.ArmTrial("B", "A") },
		func(e *grub.Env) error { boot(t, e); return e.Commit("B") },
		func(e *grub.Env) error { return e.Disable("A") },
		func(e *grub.Env) error { return e.ArmTrial("A", "B") },
	}
	e := grub.Create(filepath.Join(t.TempDir(), "grubenv"))
	for i, step := range steps {
		if err := step(e); err != nil {
			t.Fatal(err)
		}
		model := grub.Create("")
		for _, v := range e.All() {
			mustSet(t, model, v.Name, v.Value)
		}
		if got, want := e.NextSlot(), boot(t, model); got != want {
			t.Fatalf("step %d: NextSlot %s, script boots %s", i, got, want)
		}
	}
}

func TestRevert(t *testing.T) {
	e := grub.Create(filepath.Join(t.TempDir(), "grubenv"))
	if err := e.ArmTrial("B", "A"); err != nil {
		t.Fatal(err)
	}
	for range 2 { // repeating after a power cut changes nothing
		if err := e.Revert("A", "B"); err != nil {
			t.Fatal(err)
		}
		if got := boot(t, e); got != "A" || e.TryState("B") != grub.TryNone {
			t.Fatalf("after Revert: boots %s, B_TRY %q", got, e.TryState("B"))
		}
	}
	if err := e.Revert("A", "A"); !errors.Is(err, grub.ErrInvalidValue) {
		t.Fatalf("revert to abandoned slot: %v", err)
	}
}
