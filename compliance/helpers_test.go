package compliance_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/compliance"
)

// now is the fixed report date of every test.
var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// MustProfile loads testdata/profile.yaml, a complete profile.
func MustProfile(tb testing.TB) *compliance.Profile {
	tb.Helper()
	f, err := os.Open("testdata/profile.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	p, err := compliance.LoadProfile(f)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// MustFleet loads testdata/fleet.json.
func MustFleet(tb testing.TB) *compliance.FleetFacts {
	tb.Helper()
	f, err := os.Open("testdata/fleet.json")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	facts, err := compliance.ReadFleetFacts(f)
	if err != nil {
		tb.Fatal(err)
	}
	return facts
}

// MustReport computes a report; facts nil means no fleet data.
func MustReport(tb testing.TB, std compliance.Standard, p *compliance.Profile, facts *compliance.FleetFacts) *compliance.Model {
	tb.Helper()
	var fleet compliance.Fleet
	if facts != nil {
		fleet = compliance.StaticFleet{F: *facts}
	}
	m, err := compliance.Report(context.Background(), std, p, fleet, nil, compliance.Options{Now: now, Generator: "koshin test"})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// MustRow returns the row of requirement id.
func MustRow(tb testing.TB, m *compliance.Model, id string) compliance.Row {
	tb.Helper()
	r, ok := m.Row(id)
	if !ok {
		tb.Fatalf("%s report has no row %s", m.Standard, id)
	}
	return r
}

func boolp(v bool) *bool { return &v }
