package compliance_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/koshin-ota/koshin/compliance"
	"go.yaml.in/yaml/v3"
)

// FuzzLoadProfile: no input panics the parser; whatever it accepts is
// valid, survives a write/read round trip unchanged, and produces a report
// for every standard.
func FuzzLoadProfile(f *testing.F) {
	f.Add(compliance.ProfileTemplate())
	if b, err := os.ReadFile("testdata/profile.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("product: {model: &a x, manufacturer: *a}\n"))
	f.Add([]byte("statements: {en303645: {\"5.1-1\": !!binary aGk=}}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := compliance.LoadProfile(bytes.NewReader(b))
		if err != nil {
			return
		}
		out, err := yaml.Marshal(p)
		if err != nil {
			t.Fatalf("accepted profile does not marshal: %v", err)
		}
		p2, err := compliance.LoadProfile(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("round trip refused: %v\n%s", err, out)
		}
		if out2, _ := yaml.Marshal(p2); !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the profile:\n%s\n%s", out, out2)
		}
		for _, std := range compliance.Standards {
			if _, err := compliance.Report(context.Background(), std, p, nil, nil, compliance.Options{Now: now}); err != nil {
				t.Fatalf("%s report of an accepted profile: %v", std, err)
			}
		}
	})
}

// FuzzReadFleetFacts: no input panics; accepted facts produce a report.
func FuzzReadFleetFacts(f *testing.F) {
	if b, err := os.ReadFile("testdata/fleet.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"observed_at":"2026-01-01T00:00:00Z","window_days":1,"patch_latency":[{"advisory":"A","release":"1","released_at":"2025-12-31T00:00:00Z","hours_to_50_percent":1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		facts, err := compliance.ReadFleetFacts(bytes.NewReader(b))
		if err != nil {
			return
		}
		p := MustProfile(t)
		fleet := compliance.StaticFleet{F: *facts}
		if _, err := compliance.Report(context.Background(), compliance.EN303645, p, fleet, nil, compliance.Options{Now: now}); err != nil {
			t.Fatalf("report with accepted facts: %v", err)
		}
	})
}
