package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/compliance"
)

// complianceCLI runs koshin in process with a fixed clock.
type complianceCLI struct {
	t   *testing.T
	dir string
}

func newComplianceCLI(t *testing.T) *complianceCLI { return &complianceCLI{t: t, dir: t.TempDir()} }

func (c *complianceCLI) exec(args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	m := NewMain(&out, &errOut)
	m.Now = func() time.Time { return time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC) }
	m.Getenv = func(string) string { return "" }
	code := m.Run(args)
	return out.String(), errOut.String(), code
}

func (c *complianceCLI) ok(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.exec(args...)
	if code != 0 {
		c.t.Fatalf("koshin %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func TestCLIComplianceInit(t *testing.T) {
	c := newComplianceCLI(t)
	profile := filepath.Join(c.dir, "profile.yaml")
	c.ok("compliance", "init", "-o", profile)
	got, err := os.ReadFile(profile)
	if err != nil || string(got) != string(compliance.ProfileTemplate()) {
		t.Fatalf("init wrote %d bytes, %v", len(got), err)
	}
	if err := os.WriteFile(profile, []byte("filled in\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := c.exec("compliance", "init", "-o", profile); code != 1 || !strings.Contains(errOut, "exists") {
		t.Fatalf("init over an existing profile: exit %d %s", code, errOut)
	}
	if b, _ := os.ReadFile(profile); string(b) != "filled in\n" {
		t.Fatal("init destroyed an existing profile")
	}
	c.ok("compliance", "init", "-o", profile, "--force")
	// The unedited template is refused with every field to fill in.
	_, errOut, code := c.exec("compliance", "report", "--standard", "psti", "--profile", profile)
	if code != 1 || !strings.Contains(errOut, "passwords.used: required") {
		t.Fatalf("report on the template: exit %d %s", code, errOut)
	}
}

func TestCLIComplianceReport(t *testing.T) {
	c := newComplianceCLI(t)
	profile, fleet := "../../compliance/testdata/profile.yaml", "../../compliance/testdata/fleet.json"
	out := c.ok("compliance", "report", "--standard", "en303645", "--profile", profile, "--fleet", fleet)
	for _, want := range []string{"| 5.3-6 | R C(9,12) | Y |", "120 devices, observed 2026-05-01", "Generated | 2026-03-01 by koshin"} {
		if !strings.Contains(out, want) {
			t.Errorf("Markdown report lacks %q", want)
		}
	}
	file := filepath.Join(c.dir, "psti.json")
	c.ok("compliance", "report", "--standard", "psti", "--format", "json", "--profile", profile, "-o", file)
	if b, err := os.ReadFile(file); err != nil || !strings.Contains(string(b), `"schema": "koshin.compliance.report/v1"`) {
		t.Fatalf("JSON report file: %v", err)
	}
	v3 := c.ok("compliance", "report", "--standard", "en303645", "--edition", "V3.1.3", "--profile", profile)
	if !strings.Contains(v3, "| 5.0-1 |") {
		t.Error("V3.1.3 report lacks 5.0-1")
	}
	for _, args := range [][]string{
		{"--standard", "iso27001", "--profile", profile},
		{"--standard", "ccds", "--format", "pdf", "--profile", profile},
		{"--standard", "ccds", "--edition", "V3.1.3", "--profile", profile},
		{"--standard", "ccds", "--profile", profile, "--fleet", profile},
		{"--standard", "ccds", "--profile", "missing.yaml"},
	} {
		if _, _, code := c.exec(append([]string{"compliance", "report"}, args...)...); code != 1 {
			t.Errorf("koshin compliance report %v: exit %d, want 1", args, code)
		}
	}
	if _, _, code := c.exec("compliance", "report", "--profile", profile); code != 2 {
		t.Errorf("missing --standard: exit %d, want 2", code)
	}
}

// newComplianceCmd works on its own, outside the root command.
func TestComplianceCmdStandalone(t *testing.T) {
	cmd := newComplianceCmd()
	var out strings.Builder
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"init", "-o", "-"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if out.String() != string(compliance.ProfileTemplate()) {
		t.Error("init -o - did not print the template")
	}
}
