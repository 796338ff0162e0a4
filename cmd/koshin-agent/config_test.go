package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleConfigsValid(t *testing.T) {
	for _, name := range []string{"uboot.json", "grub.json"} {
		cfg, err := LoadConfig(filepath.Join("testdata", "config", name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	cfg, _ := LoadConfig("testdata/config/grub.json")
	// Defaults fill what the short example leaves out.
	if cfg.StateDir != "/var/lib/koshin" || cfg.Control.Socket != "/run/koshin/agent.sock" ||
		cfg.Control.TokenFile != "/var/lib/koshin/control/token" || cfg.RebootCommand[0] != "systemctl" ||
		cfg.Installers["rootfs"].Type != "raw" || cfg.Channel != "release" {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	if !*cfg.Integrity.SlotCheck || cfg.Integrity.SlotCheckRate != 16<<20 || cfg.Integrity.SlotCheckEvery != 0 {
		t.Fatalf("integrity defaults not applied: %+v", cfg.Integrity)
	}
	u, _ := LoadConfig("testdata/config/uboot.json")
	if time.Duration(u.Control.LockoutBase) != 30*time.Second || u.Installers["modem"].Path == "" {
		t.Fatalf("uboot.json decoded as %+v", u)
	}
	if time.Duration(u.Integrity.SlotCheckEvery) != 24*time.Hour || u.Integrity.BootCheck[0] != "/usr/lib/koshin/boot-check" {
		t.Fatalf("uboot.json integrity decoded as %+v", u.Integrity)
	}
}

func TestConfigTypoRefused(t *testing.T) {
	_, err := LoadConfig("testdata/config/typo.json")
	if err == nil || !strings.Contains(err.Error(), "helth") {
		t.Fatalf("typo: %v, want an unknown-field error naming it", err)
	}
}

func TestConfigInvalid(t *testing.T) {
	cfg, err := LoadConfig("testdata/config/invalid.json")
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, want := range []string{"https", "hardware", "two different", "bootloader.type", "installer app",
		`"/var/lib" overlaps`, "absolute program path"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("validation error lacks %q:\n%v", want, err)
		}
	}
}

func TestFlagsOverrideConfig(t *testing.T) {
	m := NewMain(&strings.Builder{}, &strings.Builder{})
	m.Getenv = func(string) string { return "" }
	cfg, _, err := m.runConfig("run", []string{"-config", "testdata/config/grub.json", "-state-dir", "/data/koshin",
		"-socket", "/run/k.sock", "-installer", "app=archive:/opt/app", "-bootloader", "sim", "-sim-env", "/tmp/env.json"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StateDir != "/data/koshin" || cfg.Control.TokenFile != "/data/koshin/control/token" ||
		cfg.Control.Socket != "/run/k.sock" || cfg.Installers["app"].Root != "/opt/app" || cfg.Bootloader.Type != "sim" {
		t.Fatalf("flags not applied: %+v", cfg)
	}
	if _, _, err := m.runConfig("run", []string{"-installer", "app=zip"}, nil); err == nil {
		t.Fatal("accepted an unknown installer type")
	}
}

func TestMissingDefaultConfigUsesFlags(t *testing.T) {
	m := NewMain(&strings.Builder{}, &strings.Builder{})
	m.Getenv = func(string) string { return "" }
	if _, err := os.Stat(DefaultConfigPath); err == nil {
		t.Skip(DefaultConfigPath + " exists here")
	}
	cfg, _, err := m.runConfig("run", []string{"-server", "https://u.example", "-hardware-id", "b"}, nil)
	if err != nil || cfg.Server != "https://u.example" {
		t.Fatalf("%+v, %v", cfg, err)
	}
	if _, _, err := m.runConfig("run", []string{"-config", "/nonexistent/agent.json"}, nil); err == nil {
		t.Fatal("a missing configuration named explicitly was ignored")
	}
}

// poll.checkpoint_min_interval: unset is the engine's default (1 s), "0s"
// checkpoints by bytes only (negative for the engine), others pass as they
// are; negative values are refused.
func TestCheckpointMinInterval(t *testing.T) {
	d := func(v time.Duration) *Duration { x := Duration(v); return &x }
	for _, tt := range []struct {
		in   *Duration
		want time.Duration
	}{{nil, 0}, {d(0), -1}, {d(3 * time.Second), 3 * time.Second}} {
		if got := (PollConfig{CheckpointMinInterval: tt.in}).checkpointMinInterval(); got != tt.want {
			t.Errorf("checkpoint_min_interval %v: engine gets %s, want %s", tt.in, got, tt.want)
		}
	}
	cfg, err := LoadConfig("testdata/config/invalid.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Poll.CheckpointMinInterval = d(-time.Second)
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "checkpoint_min_interval") {
		t.Fatalf("negative interval: %v", err)
	}
}
