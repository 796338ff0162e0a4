package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, yaml string) string {
	p := filepath.Join(t.TempDir(), "koshin.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServerConfigLayers: defaults < file < environment; flags are applied
// by the command on top (tested through the command in the e2e fixture).
func TestServerConfigLayers(t *testing.T) {
	p := writeConfig(t, `
data_dir: /srv/koshin
hosts: [update.example.com, 192.0.2.10]
poll_interval: 2h
lockout:
  free_attempts: 3
  max_delay: 1h
limits:
  device_rate: 0.5
`)
	env := []string{"KOSHIN_POLL_JITTER=5m", "KOSHIN_LIMITS__DEVICE_BURST=7", "KOSHIN_PASSPHRASE=not-config", "KOSHIN_TOKEN=x", "PATH=/bin"}
	cfg, err := loadServerConfig(p, func() []string { return env })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/srv/koshin" || !slices.Equal(cfg.Hosts, []string{"update.example.com", "192.0.2.10"}) ||
		cfg.PollInterval != 2*time.Hour || cfg.PollJitter != 5*time.Minute || cfg.Lockout.FreeAttempts != 3 ||
		cfg.Lockout.MaxDelay != time.Hour || cfg.Lockout.BaseDelay != time.Second || cfg.Limits.DeviceRate != 0.5 ||
		cfg.Limits.DeviceBurst != 7 || cfg.DeviceListen != ":8443" || cfg.ManagementListen != "127.0.0.1:8444" {
		t.Fatalf("config: %+v", cfg)
	}
	if err := cfg.resolve(); err != nil {
		t.Fatal(err)
	}
	if cfg.Dir.Key != "/srv/koshin/director/targets.key" {
		t.Fatalf("director key %q", cfg.Dir.Key)
	}
}

func TestServerConfigRefusals(t *testing.T) {
	for name, yaml := range map[string]string{
		"unknown key":    "data_dir: /x\npol_interval: 1h\n",
		"bad duration":   "poll_interval: often\n",
		"bad type":       "limits: 7\n",
		"nested unknown": "lockout:\n  attempts: 3\n",
	} {
		if _, err := loadServerConfig(writeConfig(t, yaml), func() []string { return nil }); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	cfg, err := loadServerConfig("", func() []string { return []string{"KOSHIN_POLL_INTERVAL=1s"} })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.resolve(); err == nil || !strings.Contains(err.Error(), "Poll interval") {
		t.Fatalf("1s poll interval: %v", err)
	}
	cfg = defaultServerConfig()
	cfg.Lockout.FreeAttempts = 0
	if err := cfg.resolve(); err == nil {
		t.Fatal("lockout without free attempts accepted")
	}
}
