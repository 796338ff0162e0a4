package bootenv_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/agenttest"
	"github.com/koshin-ota/koshin/agent/bootenv"
	"github.com/koshin-ota/koshin/agent/grub"
	"github.com/koshin-ota/koshin/agent/uboot"
)

// ubootBoot does what U-Boot does at power-on with CONFIG_BOOTCOUNT_ENV and
// the altbootcmd of agent/uboot/testdata/ab-boot.env.
func ubootBoot(t *testing.T, cfg uboot.Config) string {
	t.Helper()
	env, err := uboot.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if env.TrialPending() {
		n := env.BootCount() + 1
		set(t, env, uboot.VarBootcount, strconv.FormatUint(n, 10))
		if n > env.BootLimit() { // altbootcmd
			slot, _ := env.Get(uboot.DefaultSlotVar)
			other := map[string]string{"A": "B", "B": "A"}[slot]
			set(t, env, uboot.DefaultSlotVar, other)
			set(t, env, uboot.VarUpgradeAvailable, "0")
			set(t, env, uboot.VarBootcount, "0")
		}
		if err := env.Save(); err != nil {
			t.Fatal(err)
		}
	}
	slot, _ := env.Get(uboot.DefaultSlotVar)
	return slot
}

func set(t *testing.T, env *uboot.Env, k, v string) {
	t.Helper()
	if err := env.Set(k, v); err != nil {
		t.Fatal(err)
	}
}

func newUBootEnv(t *testing.T) uboot.Config {
	dir := t.TempDir()
	vars := map[string]string{
		"bootlimit": "3", "bootcount": "0", "upgrade_available": "0", "koshin_slot": "A",
		"bootcmd":    `if test "${koshin_slot}" = "B"; then run koshin_boot_B; else run koshin_boot_A; fi`,
		"altbootcmd": `if test "${koshin_slot}" = "B"; then setenv koshin_slot A; else setenv koshin_slot B; fi; setenv upgrade_available 0; setenv bootcount 0; saveenv; run bootcmd`,
	}
	cfg := uboot.Config{}
	for i, name := range []string{"env0.bin", "env1.bin"} {
		raw, err := uboot.Encode(uboot.Image{Vars: vars, Flags: uint8(i)}, 0x4000, true)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.Copies = append(cfg.Copies, uboot.Location{Path: p, Size: 0x4000})
	}
	return cfg
}

func TestUBootAdapter(t *testing.T) {
	var cfg uboot.Config
	var booted string
	agenttest.RunBootloaderSuite(t, agenttest.BootloaderHarness{
		BootLimit: 3,
		New: func(t *testing.T) agent.Bootloader {
			cfg = newUBootEnv(t)
			return &bootenv.UBoot{Env: cfg, Booted: func() (string, error) { return booted, nil }}
		},
		PowerOn: func(t *testing.T) string { booted = ubootBoot(t, cfg); return booted },
	})
}

// grubBoot does what agent/grub/testdata/koshin-ab.cfg does at power-on.
func grubBoot(t *testing.T, path string) string {
	t.Helper()
	env, err := grub.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	slot := env.NextSlot()
	if env.TryState(slot) == grub.TryArmed {
		if err := env.Set(grub.TryVar(slot), grub.TryTaken); err != nil {
			t.Fatal(err)
		}
		if err := env.Save(); err != nil {
			t.Fatal(err)
		}
	}
	return slot
}

func TestGRUBAdapter(t *testing.T) {
	var path, booted string
	agenttest.RunBootloaderSuite(t, agenttest.BootloaderHarness{
		BootLimit: 1,
		New: func(t *testing.T) agent.Bootloader {
			path = filepath.Join(t.TempDir(), "grubenv")
			if err := grub.Create(path).Save(); err != nil {
				t.Fatal(err)
			}
			return &bootenv.GRUB{Path: path, Booted: func() (string, error) { return booted, nil }}
		},
		PowerOn: func(t *testing.T) string { booted = grubBoot(t, path); return booted },
	})
}

func TestParseCmdline(t *testing.T) {
	for cmdline, want := range map[string]string{
		"root=/dev/mmcblk0p3 rootwait ro koshin.slot=B\n": "B",
		"koshin.slot=A quiet koshin.slot=B":               "B",
		"quiet":                                           "",
		"koshin.slot=":                                    "",
	} {
		got, err := bootenv.ParseCmdline(cmdline)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("ParseCmdline(%q) = %q, %v; want %q", cmdline, got, err, want)
		}
	}
}
