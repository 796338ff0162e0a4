package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/sqlite"
	"github.com/koshin-ota/koshin/storetest"
)

// `koshin compliance report --store sqlite:DIR` observes the fleet in a
// server's data directory: when the fleet's users switch automatic
// updates off, EN 303 645 5.3-6 turns from Y to N and the contradiction
// with the profile is flagged.
func TestCLIComplianceReportFromStore(t *testing.T) {
	c := newComplianceCLI(t)
	dataDir := filepath.Join(c.dir, "data")
	db := sqlite.NewDB(filepath.Join(mkdir(t, dataDir), dbFile))
	now := func() time.Time { return time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC) }
	db.Now = now
	ctx := context.Background()
	mustDo(t, db.Open(ctx))
	var devs []*koshin.Device
	for i := range 3 {
		d := storetest.NewDevice(t, fmt.Sprintf("SN-%d", i), "board-a")
		mustDo(t, db.CreateDevice(ctx, d))
		_, err := db.RecordDeviceReport(ctx, d.ID, d.Inventory, now())
		mustDo(t, err)
		devs = append(devs, d)
	}
	mustDo(t, db.Close())

	report := func() string {
		t.Helper()
		return c.ok("compliance", "report", "--standard", "en303645", "--profile", "../../compliance/testdata/profile.yaml",
			"--store", "sqlite:"+dataDir)
	}
	if out := report(); !strings.Contains(out, "| 5.3-6 | R C(9,12) | Y |") || !strings.Contains(out, "3 devices, observed 2026-03-01") {
		t.Fatalf("report with automatic updates on:\n%s", out)
	}

	mustDo(t, db.Open(ctx))
	for _, d := range devs {
		d.Inventory.Settings.Automatic = false
		_, err := db.RecordDeviceReport(ctx, d.ID, d.Inventory, now())
		mustDo(t, err)
	}
	mustDo(t, db.Close())
	out := report()
	if !strings.Contains(out, "| 5.3-6 | R C(9,12) | N |") || !strings.Contains(out, "none of 3 devices has them on") {
		t.Fatalf("report with automatic updates off:\n%s", out)
	}

	for _, args := range [][]string{
		{"--store", "postgres:dbname=koshin"},
		{"--store", "sqlite:" + filepath.Join(c.dir, "missing")},
		{"--store", "sqlite:" + dataDir, "--fleet", "../../compliance/testdata/fleet.json"},
	} {
		if _, _, code := c.exec(append([]string{"compliance", "report", "--standard", "ccds", "--profile", "../../compliance/testdata/profile.yaml"}, args...)...); code == 0 {
			t.Errorf("koshin compliance report %v succeeded", args)
		}
	}
}

func mkdir(t *testing.T, dir string) string {
	mustDo(t, os.MkdirAll(dir, 0o700))
	return dir
}

func TestCLISecurityTxt(t *testing.T) {
	c := newComplianceCLI(t)
	out := c.ok("compliance", "security-txt", "--profile", "../../compliance/testdata/profile.yaml")
	for _, want := range []string{"Contact: mailto:security@example.com\n", "Expires: 2026-08-28T00:00:00Z\n", "Policy: https://example.com/security\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("security.txt lacks %q:\n%s", want, out)
		}
	}
}
