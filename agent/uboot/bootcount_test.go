package uboot_test

import (
	"errors"
	"maps"
	"testing"

	"github.com/koshin-ota/koshin/agent/uboot"
)

func abEnv() map[string]string {
	return map[string]string{
		"bootlimit":         "3",
		"bootcount":         "0",
		"upgrade_available": "0",
		"koshin_slot":       "A",
		"bootcmd":           "run koshin_boot_${koshin_slot}",
		"altbootcmd":        "setenv koshin_slot A; saveenv; run bootcmd",
	}
}

func TestArmTrialAndCommit(t *testing.T) {
	cfg := redundantEnv(t, abEnv(), 1, nil, 0)
	e := mustOpen(t, cfg)
	if e.TrialPending() {
		t.Fatal("trial pending before ArmTrial")
	}
	if err := e.ArmTrial(uboot.DefaultSlotVar, "B"); err != nil {
		t.Fatal(err)
	}
	mustSave(t, e)

	e = mustOpen(t, cfg)
	wantVar(t, e, "koshin_slot", "B")
	wantVar(t, e, "upgrade_available", "1")
	if !e.TrialPending() || e.BootCount() != 0 {
		t.Fatalf("pending %v, count %d; want true, 0", e.TrialPending(), e.BootCount())
	}
	mustSet(t, e, "bootcount", "2") // what U-Boot writes on the second boot
	if e.BootCount() != 2 {
		t.Fatalf("BootCount %d, want 2", e.BootCount())
	}
	if err := e.Commit(); err != nil {
		t.Fatal(err)
	}
	mustSave(t, e)
	e = mustOpen(t, cfg)
	if e.TrialPending() || e.BootCount() != 0 {
		t.Fatalf("after commit: pending %v, count %d", e.TrialPending(), e.BootCount())
	}
	wantVar(t, e, "koshin_slot", "B")
}

func TestArmTrialRefusesWithoutFallback(t *testing.T) {
	for _, tt := range []struct {
		name   string
		change func(map[string]string)
		want   error
	}{
		{"no bootlimit", func(m map[string]string) { delete(m, "bootlimit") }, uboot.ErrNoFallback},
		{"bootlimit 0", func(m map[string]string) { m["bootlimit"] = "0" }, uboot.ErrNoFallback},
		{"bootlimit not a number", func(m map[string]string) { m["bootlimit"] = "x" }, uboot.ErrNoFallback},
		{"no altbootcmd", func(m map[string]string) { delete(m, "altbootcmd") }, uboot.ErrNoFallback},
	} {
		t.Run(tt.name, func(t *testing.T) {
			vars := abEnv()
			tt.change(vars)
			e := mustOpen(t, singleEnv(t, vars))
			if err := e.ArmTrial(uboot.DefaultSlotVar, "B"); !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if !maps.Equal(e.All(), vars) {
				t.Fatal("variables changed by a refused ArmTrial")
			}
		})
	}
	e := mustOpen(t, singleEnv(t, abEnv()))
	if err := e.ArmTrial("bad=name", "B"); !errors.Is(err, uboot.ErrInvalidName) {
		t.Fatalf("bad slot variable: err %v", err)
	}
	if err := e.ArmTrial(uboot.DefaultSlotVar, ""); !errors.Is(err, uboot.ErrInvalidValue) {
		t.Fatalf("empty slot: err %v", err)
	}
}

// U-Boot's env_get_ulong reads the leading decimal digits.
func TestBootCountParsing(t *testing.T) {
	for in, want := range map[string]uint64{"": 0, "7": 7, "12abc": 12, "x1": 0, "003": 3} {
		vars := abEnv()
		vars["bootcount"] = in
		if got := mustOpen(t, singleEnv(t, vars)).BootCount(); got != want {
			t.Errorf("bootcount %q: %d, want %d", in, got, want)
		}
	}
}

func TestRevert(t *testing.T) {
	cfg := redundantEnv(t, abEnv(), 1, nil, 0)
	e := mustOpen(t, cfg)
	if err := e.ArmTrial(uboot.DefaultSlotVar, "B"); err != nil {
		t.Fatal(err)
	}
	mustSave(t, e)
	for range 2 { // repeating after a power cut changes nothing
		e = mustOpen(t, cfg)
		if err := e.Revert(uboot.DefaultSlotVar, "A"); err != nil {
			t.Fatal(err)
		}
		mustSave(t, e)
		e = mustOpen(t, cfg)
		wantVar(t, e, "koshin_slot", "A")
		if e.TrialPending() || e.BootCount() != 0 || e.BootLimit() != 3 {
			t.Fatalf("pending %v count %d limit %d", e.TrialPending(), e.BootCount(), e.BootLimit())
		}
	}
	if err := e.Revert(uboot.DefaultSlotVar, ""); !errors.Is(err, uboot.ErrInvalidValue) {
		t.Fatalf("empty slot: %v", err)
	}
}
