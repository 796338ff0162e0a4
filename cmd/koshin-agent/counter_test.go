package main

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/tpm"
)

// counterConfig parses grub.json's settings with section as its "counter".
func counterConfig(t *testing.T, section string) (*Config, error) {
	t.Helper()
	return ParseConfig([]byte(`{
  "server": "https://updates.example.com:8443",
  "hardware_id": "gateway-x86",
  "slots": {"a": "/dev/disk/by-partlabel/root_A", "b": "/dev/disk/by-partlabel/root_B"},
  "bootloader": {"type": "grub", "grubenv": "/boot/efi/EFI/koshin/grubenv"}` + section + `
}`))
}

func TestCounterConfig(t *testing.T) {
	for _, tc := range []struct {
		name, section string
		typ, device   string
		base          NVIndex
	}{
		{"default", ``, "file", "/dev/tpmrm0", 0x01804B00},
		{"file", `, "counter": {"type": "file"}`, "file", "/dev/tpmrm0", 0x01804B00},
		{"tpm defaults", `, "counter": {"type": "tpm"}`, "tpm", "/dev/tpmrm0", 0x01804B00},
		{"tpm hex", `, "counter": {"type": "tpm", "tpm_device": "/dev/tpm0", "tpm_nv_base": "0x01810000"}`, "tpm", "/dev/tpm0", 0x01810000},
		{"tpm number", `, "counter": {"type": "tpm", "tpm_nv_base": 25231360}`, "tpm", "/dev/tpmrm0", 0x01810000},
		{"last range in owner space", `, "counter": {"type": "tpm", "tpm_nv_base": "0x01BFFFE0"}`, "tpm", "/dev/tpmrm0", 0x01BFFFE0},
	} {
		cfg, err := counterConfig(t, tc.section)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c := cfg.Counter; c.Type != tc.typ || c.TPMDevice != tc.device || c.TPMNVBase != tc.base {
			t.Errorf("%s: decoded as %+v, want type %s, device %s, base %v", tc.name, c, tc.typ, tc.device, tc.base)
		}
	}
	u, err := LoadConfig("testdata/config/uboot.json")
	if err != nil || u.Counter.Type != "tpm" || u.Counter.TPMNVBase != NVIndex(tpm.DefaultBase) {
		t.Fatalf("uboot.json counter: %+v, %v", u.Counter, err)
	}
}

func TestCounterConfigRefused(t *testing.T) {
	for _, tc := range []struct{ name, section, want string }{
		{"unknown type", `, "counter": {"type": "TPM"}`, `counter.type must be file or tpm, have "TPM"`},
		{"platform range", `, "counter": {"type": "tpm", "tpm_nv_base": "0x01500016"}`, "owner range"},
		{"spills out of owner range", `, "counter": {"type": "tpm", "tpm_nv_base": "0x01BFFFF0"}`, "owner range"},
		{"persistent handle", `, "counter": {"type": "tpm", "tpm_nv_base": "0x81000001"}`, "counter.tpm_nv_base 0x81000001"},
		{"relative device", `, "counter": {"type": "tpm", "tpm_device": "tpmrm0"}`, "counter.tpm_device must be an absolute path"},
		{"relative owner auth", `, "counter": {"type": "tpm", "tpm_owner_auth_file": "owner.auth"}`, "counter.tpm_owner_auth_file"},
		{"too many components", `, "counter": {"type": "tpm"}, "installers": {` + manyInstallers(17) + `}`, "holds 16 components, have 17"},
	} {
		cfg, err := counterConfig(t, tc.section)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	for _, tc := range []struct{ name, section, want string }{
		{"not a number", `, "counter": {"type": "tpm", "tpm_nv_base": "zz"}`, `NV index "zz"`},
		{"too large", `, "counter": {"type": "tpm", "tpm_nv_base": "0x101804B00"}`, "NV index"},
		{"negative", `, "counter": {"type": "tpm", "tpm_nv_base": -1}`, "NV index"},
		{"misspelt field", `, "counter": {"type": "tpm", "tpm_nv_index": "0x01804B00"}`, "tpm_nv_index"},
	} {
		if _, err := counterConfig(t, tc.section); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a parse error with %q", tc.name, err, tc.want)
		}
	}
}

func manyInstallers(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(`"c` + string(rune('a'+i)) + `": {"type": "module", "path": "/usr/lib/m"}`)
	}
	return b.String()
}

func TestCounterFlags(t *testing.T) {
	m := NewMain(&strings.Builder{}, &strings.Builder{})
	m.Getenv = func(string) string { return "" }
	cfg, _, err := m.runConfig("run", []string{"-config", "testdata/config/grub.json", "-counter", "tpm", "-tpm-device", "/dev/tpm0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Counter.Type != "tpm" || cfg.Counter.TPMDevice != "/dev/tpm0" || cfg.Counter.TPMNVBase != NVIndex(tpm.DefaultBase) {
		t.Fatalf("flags not applied: %+v", cfg.Counter)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg, _, _ = m.runConfig("run", []string{"-config", "testdata/config/grub.json", "-counter", "nvram"}, nil)
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "counter.type") {
		t.Fatalf("-counter nvram: %v", err)
	}
}

// The file type builds the file counter; the tpm type opens the configured
// device, and a device that cannot be opened stops the agent with its
// name, instead of falling back to the file counter.
func TestCounterWiring(t *testing.T) {
	cfg, err := counterConfig(t, `, "counter": {"type": "file"}`)
	if err != nil {
		t.Fatal(err)
	}
	cfg.StateDir = t.TempDir()
	a := &Agent{cfg: cfg, log: slog.New(slog.DiscardHandler)}
	state := agent.DirFS(t.TempDir())
	c, closer, err := a.counter(state, make([]byte, 32), nil)
	if _, ok := c.(*agent.FileCounter); !ok || closer != nil || err != nil {
		t.Fatalf("file type: %T, %v", c, err)
	}

	cfg.Counter.Type, cfg.Counter.TPMDevice = "tpm", "/dev/tpm-missing"
	var opened string
	old := openTPM
	t.Cleanup(func() { openTPM = old })
	openTPM = func(path string) (transport.TPMCloser, error) {
		opened = path
		return nil, errors.New("no such device")
	}
	c, _, err = a.counter(state, make([]byte, 32), nil)
	if c != nil || err == nil || !strings.Contains(err.Error(), "open TPM /dev/tpm-missing: no such device") || opened != "/dev/tpm-missing" {
		t.Fatalf("missing TPM: %v, %v (opened %q)", c, err, opened)
	}
}

func TestNVIndexJSON(t *testing.T) {
	b, err := NVIndex(0x01804B00).MarshalJSON()
	if err != nil || string(b) != `"0x01804b00"` {
		t.Fatalf("%s, %v", b, err)
	}
	var n NVIndex
	if err := n.UnmarshalJSON(b); err != nil || n != 0x01804B00 {
		t.Fatalf("round trip: %v, %v", n, err)
	}
}
