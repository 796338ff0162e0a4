package compliance_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/compliance"
)

// wantRow checks a row's support, openness and a fragment of its detail.
func wantRow(t *testing.T, m *compliance.Model, id string, support compliance.Support, detail string) compliance.Row {
	t.Helper()
	r := MustRow(t, m, id)
	if r.Support != support || !strings.Contains(r.Detail, detail) {
		t.Errorf("%s %s = %s %q, want %s containing %q", m.Standard, id, r.Support, r.Detail, support, detail)
	}
	return r
}

func wantFlag(t *testing.T, m *compliance.Model, req, fragment string) {
	t.Helper()
	for _, f := range m.Flags {
		if slices.Contains(f.Requirements, req) && strings.Contains(f.Message, fragment) {
			return
		}
	}
	t.Errorf("no flag on %s containing %q; flags: %+v", req, fragment, m.Flags)
}

// Changing the profile changes the report.
func TestProfileDrivesReport(t *testing.T) {
	facts := MustFleet(t)
	t.Run("passwords", func(t *testing.T) {
		p := MustProfile(t)
		m := MustReport(t, compliance.EN303645, p, facts)
		wantRow(t, m, "5.1-1", compliance.SupportYes, "the user sets a password before first use")
		wantRow(t, m, "5.1-2", compliance.SupportNA, "condition 2 (pre-installed passwords are used)")

		p.Passwords.PreInstalled, p.Passwords.Generation = boolp(true), "12 random characters from the SoC's TRNG"
		m = MustReport(t, compliance.EN303645, p, facts)
		wantRow(t, m, "5.1-2", compliance.SupportYes, "12 random characters from the SoC's TRNG")

		p.Passwords.Used, p.Passwords.PreInstalled, p.Passwords.Generation = boolp(false), boolp(false), ""
		m = MustReport(t, compliance.EN303645, p, facts)
		wantRow(t, m, "5.1-1", compliance.SupportNA, "condition 1 (passwords are used) does not hold")
	})
	t.Run("debug port", func(t *testing.T) {
		p := MustProfile(t)
		wantRow(t, MustReport(t, compliance.EN303645, p, facts), "5.6-4", compliance.SupportYes, "disabled in software")
		p.Device.DebugPort.DisabledInSoftware = boolp(false)
		wantRow(t, MustReport(t, compliance.EN303645, p, facts), "5.6-4", compliance.SupportNo, "is enabled")
		p.Device.DebugPort.PhysicallyAccessible = boolp(false)
		wantRow(t, MustReport(t, compliance.EN303645, p, facts), "5.6-4", compliance.SupportNA, "condition 13")
	})
	t.Run("non-updateable constrained device", func(t *testing.T) {
		p := MustProfile(t)
		m := MustReport(t, compliance.EN303645, p, facts)
		wantRow(t, m, "5.3-14", compliance.SupportNA, "condition 3")
		wantRow(t, m, "5.3-2", compliance.SupportYes, "")
		p.Device.Constrained = boolp(true)
		p.Updates = compliance.Updates{Mechanism: boolp(false), OverNetwork: boolp(false), Automatic: boolp(false),
			Notifications: boolp(false), EnabledByDefault: boolp(false)}
		m = MustReport(t, compliance.EN303645, p, nil)
		wantRow(t, m, "5.3-2", compliance.SupportNA, "condition 5")
		wantRow(t, m, "5.3-10", compliance.SupportNA, "condition 11")
		if r := MustRow(t, m, "5.3-14"); r.Support == compliance.SupportNA {
			t.Errorf("5.3-14 must apply to a constrained device without updates: %+v", r)
		}
		wantRow(t, m, "5.3-15", compliance.SupportNo, "the profile needs a statement")
	})
	t.Run("justification", func(t *testing.T) {
		p := MustProfile(t)
		m := MustReport(t, compliance.EN303645, p, facts)
		wantRow(t, m, "5.6-8", compliance.SupportNo, "Justification: The SoC has no memory protection unit")
		r41 := MustRow(t, m, "4-1")
		if strings.Contains(r41.Detail, "5.6-8") || !strings.Contains(r41.Detail, "5.6-3") {
			t.Errorf("4-1 must list the unjustified 5.6-3 and not the justified 5.6-8: %q", r41.Detail)
		}
		delete(p.Justifications["en303645"], "5.6-8")
		m = MustReport(t, compliance.EN303645, p, facts)
		wantRow(t, m, "5.6-8", compliance.SupportNo, "koshin cannot observe this")
		wantRow(t, m, "4-1", compliance.SupportNo, "5.6-8")
	})
	t.Run("statement", func(t *testing.T) {
		p := MustProfile(t)
		r := wantRow(t, MustReport(t, compliance.EN303645, p, facts), "5.6-9", compliance.SupportYes, "Manufacturer: Firmware follows our SDL")
		if !slices.Equal(r.Kinds, []compliance.Kind{compliance.KindDeclared}) {
			t.Errorf("statement-only row has kinds %v", r.Kinds)
		}
		delete(p.Statements["en303645"], "5.6-9")
		wantRow(t, MustReport(t, compliance.EN303645, p, facts), "5.6-9", compliance.SupportNo, "needs a statement")
	})
	t.Run("statement completes the update path", func(t *testing.T) {
		p := MustProfile(t)
		r := wantRow(t, MustReport(t, compliance.EN303645, p, facts), "5.1-5", compliance.SupportYes, "Manufacturer: The local API allows 5 PIN attempts")
		if !slices.Equal(r.Kinds, []compliance.Kind{compliance.KindTest, compliance.KindFleet, compliance.KindDeclared}) {
			t.Errorf("5.1-5 kinds %v, want T, F, D", r.Kinds)
		}
		// A statement does not stand in for koshin's missing evidence.
		r = wantRow(t, MustReport(t, compliance.EN303645, p, nil), "5.1-4", compliance.SupportNo, "Not evidenced yet: No fleet data supplied.")
		if !r.Open {
			t.Error("a row waiting for fleet data must be open")
		}
		delete(p.Statements["en303645"], "5.1-5")
		r = wantRow(t, MustReport(t, compliance.EN303645, p, facts), "5.1-5", compliance.SupportNo, "koshin evidences its own part")
		if !r.Open {
			t.Error("a row waiting for a statement must be open")
		}
	})
	t.Run("support period ended", func(t *testing.T) {
		p := MustProfile(t)
		p.SupportPeriod.End = "2026-04-30"
		m := MustReport(t, compliance.EN303645, p, facts)
		wantRow(t, m, "5.3-13", compliance.SupportNo, "Support period ended on 2026-04-30")
		wantFlag(t, m, "5.3-13", "no longer receives security updates")
		p.SupportPeriod.End = "2026-05-01" // the report's own date is still inside
		wantRow(t, MustReport(t, compliance.EN303645, p, facts), "5.3-13", compliance.SupportYes, "until 2026-05-01")
	})
}

// Changing the fleet changes the report.
func TestFleetDrivesReport(t *testing.T) {
	p := MustProfile(t)
	t.Run("automatic updates", func(t *testing.T) {
		facts := MustFleet(t)
		m := MustReport(t, compliance.EN303645, p, facts)
		r := wantRow(t, m, "5.3-6", compliance.SupportYes, "110 of 120 devices (91.7 %) have automatic updates on")
		if r.Flagged || len(m.Flags) != 0 {
			t.Errorf("healthy fleet flagged: %+v", m.Flags)
		}
		facts.AutomaticUpdates = 0
		m = MustReport(t, compliance.EN303645, p, facts)
		r = wantRow(t, m, "5.3-6", compliance.SupportNo, "0 of 120 devices (0.0 %) have automatic updates on")
		if !r.Flagged || !slices.Contains(r.Kinds, compliance.KindFleet) {
			t.Errorf("5.3-6 not flagged as a fleet contradiction: %+v", r)
		}
		wantFlag(t, m, "5.3-6", "declares automatic updates on by default, but none of 120 devices")
		wantRow(t, MustReport(t, compliance.CCDS, p, facts), "UPD01", compliance.SupportNo, "0 of 120")
	})
	t.Run("poll schedule", func(t *testing.T) {
		facts := MustFleet(t)
		wantRow(t, MustReport(t, compliance.EN303645, p, facts), "5.3-5", compliance.SupportYes, "median 6 h")
		facts.PollJitter = compliance.Distribution{Samples: 120}
		m := MustReport(t, compliance.EN303645, p, facts)
		wantRow(t, m, "5.3-5", compliance.SupportNo, "jitter up to 0 s")
		wantFlag(t, m, "5.9-3", "randomised time")
	})
	t.Run("patch latency", func(t *testing.T) {
		facts := MustFleet(t)
		wantRow(t, MustReport(t, compliance.EN303645, p, facts), "5.3-8", compliance.SupportYes, "90 % in 70 h")
		late := 61.0 * 24
		facts.PatchLatency[0].HoursTo90 = &late
		m := MustReport(t, compliance.EN303645, p, facts)
		wantRow(t, m, "5.3-8", compliance.SupportNo, "90 % in 1464 h")
		wantFlag(t, m, "5.3-8", "KOSHIN-2026-001 did not reach 90 % of affected devices within the 60-day target")
	})
	t.Run("shared identities", func(t *testing.T) {
		facts := MustFleet(t)
		facts.DistinctIdentities = 100
		m := MustReport(t, compliance.EN303645, p, facts)
		wantRow(t, m, "5.4-4", compliance.SupportNo, "120 devices share 100 distinct keys")
		wantFlag(t, m, "5.4-4", "not unique")
	})
	t.Run("no fleet data", func(t *testing.T) {
		m := MustReport(t, compliance.EN303645, p, nil)
		r := wantRow(t, m, "5.3-5", compliance.SupportNo, "No fleet data supplied")
		if !r.Open || m.Fleet != nil {
			t.Errorf("missing fleet data must leave 5.3-5 open: %+v", r)
		}
		wantRow(t, m, "5.3-2", compliance.SupportYes, "") // T evidence needs no fleet
	})
	t.Run("anomaly detection", func(t *testing.T) {
		facts := MustFleet(t)
		wantRow(t, MustReport(t, compliance.EN303645, p, facts), "5.10-1", compliance.SupportYes, "3 refused updates")
		// Without fleet observations of it, the detector's tests carry
		// the row, and the appendix says the fleet shows nothing yet.
		facts.SignatureRejections, facts.RejectingDevices = 0, 0
		m := MustReport(t, compliance.EN303645, p, facts)
		if r := wantRow(t, m, "5.10-1", compliance.SupportYes, "raises one alert per window"); !slices.Equal(r.Kinds, []compliance.Kind{compliance.KindTest}) {
			t.Errorf("5.10-1 rests on %v, want T", r.Kinds)
		}
		if ev := evidenceResult(t, m, "f-anomaly-alerts"); ev.Result != compliance.ResultMissing || !strings.Contains(ev.Observation, "does not report telemetry anomaly detection yet") {
			t.Errorf("f-anomaly-alerts = %+v", ev)
		}
		alerts := 2
		facts.AnomalyAlerts = &alerts
		r := wantRow(t, MustReport(t, compliance.EN303645, p, facts), "5.10-1", compliance.SupportYes, "Anomaly detection running: 2 alerts")
		if !slices.Equal(r.Kinds, []compliance.Kind{compliance.KindTest, compliance.KindFleet}) {
			t.Errorf("5.10-1 rests on %v, want T and F", r.Kinds)
		}
	})
}

// Table B.1 allows N/A only for conditional provisions whose condition does
// not hold; every other row is answered Y or N with a detail.
func TestNotApplicableFollowsConditions(t *testing.T) {
	for mask := 0; mask < 1<<6; mask++ {
		p := MustProfile(t)
		bit := func(i int) *bool { return boolp(mask&(1<<i) != 0) }
		p.Passwords.Used, p.Passwords.PreInstalled = bit(0), boolp(false)
		p.Device.Constrained, p.Device.UserAuthentication = bit(1), bit(2)
		p.Data.Telemetry, p.Device.HardCodedIdentity = bit(3), bit(4)
		p.Device.DebugPort.PhysicallyAccessible = bit(5)
		m := MustReport(t, compliance.EN303645, p, MustFleet(t))
		holds := map[int]bool{}
		for _, c := range m.Conditions {
			holds[c.Number] = c.Holds
		}
		cat := mustCatalogue(t, compliance.EN303645, "")
		for _, row := range m.Rows() {
			r, _ := cat.Requirement(row.ID)
			allHold := !slices.ContainsFunc(r.Conditions, func(n int) bool { return !holds[n] })
			if (row.Support == compliance.SupportNA) == allHold {
				t.Fatalf("mask %b: %s (%s) answered %s with conditions holding=%v", mask, row.ID, row.Status, row.Support, allHold)
			}
			if row.Detail == "" {
				t.Fatalf("mask %b: %s has no detail", mask, row.ID)
			}
		}
	}
}

// Every report covers its whole catalogue with Y, N or N/A.
func TestEveryRequirementAnswered(t *testing.T) {
	p, facts := MustProfile(t), MustFleet(t)
	for _, std := range compliance.Standards {
		m := MustReport(t, std, p, facts)
		cat := mustCatalogue(t, std, "")
		var ids []string
		for _, r := range m.Rows() {
			ids = append(ids, r.ID)
			if !slices.Contains([]compliance.Support{compliance.SupportYes, compliance.SupportNo, compliance.SupportNA}, r.Support) {
				t.Errorf("%s %s: support %q", std, r.ID, r.Support)
			}
		}
		if !slices.Equal(ids, cat.IDs()) {
			t.Errorf("%s report rows differ from the catalogue", std)
		}
		s := m.Summary
		if s.Yes+s.No+s.NotApplicable != s.Requirements || s.Requirements != len(ids) {
			t.Errorf("%s summary does not add up: %+v", std, s)
		}
	}
}

// PSTI answers follow their EN 303 645 provisions.
func TestPSTIFollowsEN(t *testing.T) {
	p, facts := MustProfile(t), MustFleet(t)
	m := MustReport(t, compliance.PSTI, p, facts)
	wantRow(t, m, "PSTI-1", compliance.SupportYes, "5.1-2: Not applicable")
	wantRow(t, m, "PSTI-2", compliance.SupportYes, "security@example.com")
	wantRow(t, m, "PSTI-3", compliance.SupportYes, "until 2031-12-31")
	p.Passwords.Used = boolp(false)
	wantRow(t, MustReport(t, compliance.PSTI, p, facts), "PSTI-1", compliance.SupportNA, "condition 1")
	p.SupportPeriod.End = "2026-01-31"
	m = MustReport(t, compliance.PSTI, p, facts)
	wantRow(t, m, "PSTI-3", compliance.SupportNo, "ended")
	wantFlag(t, m, "PSTI-3", "support period ended")
}

// V3.1.3 rows carry the same answers as the V2.1.1 provisions they come
// from; 5.0-1 waits for a statement.
func TestV313Report(t *testing.T) {
	p, facts := MustProfile(t), MustFleet(t)
	v2 := MustReport(t, compliance.EN303645, p, facts)
	m, err := compliance.Report(context.Background(), compliance.EN303645, p, compliance.StaticFleet{F: *facts}, nil,
		compliance.Options{Now: now, Edition: compliance.EditionV313})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"5.3-6A", "5.3-6B"} {
		if got, want := MustRow(t, m, id), MustRow(t, v2, "5.3-6"); got.Support != want.Support || got.Detail != want.Detail {
			t.Errorf("%s = %s, V2.1.1 5.3-6 = %s", id, got.Support, want.Support)
		}
	}
	wantRow(t, m, "5.0-1", compliance.SupportNo, "needs a statement")
}

func TestReportRefusesBadInput(t *testing.T) {
	p := MustProfile(t)
	ctx := context.Background()
	if _, err := compliance.Report(ctx, compliance.EN303645, p, nil, nil, compliance.Options{}); err == nil {
		t.Error("report without a date accepted")
	}
	bad := *MustFleet(t)
	bad.AutomaticUpdates = 500
	if _, err := compliance.Report(ctx, compliance.EN303645, p, compliance.StaticFleet{F: bad}, nil, compliance.Options{Now: now}); err == nil {
		t.Error("fleet with more automatic devices than devices accepted")
	}
	if _, err := compliance.Report(ctx, "iso27001", p, nil, nil, compliance.Options{Now: now}); err == nil {
		t.Error("unknown standard accepted")
	}
	p.Product.Model = ""
	if _, err := compliance.Report(ctx, compliance.EN303645, p, nil, nil, compliance.Options{Now: now}); err == nil {
		t.Error("invalid profile accepted")
	}
}

func evidenceResult(t *testing.T, m *compliance.Model, id string) compliance.EvidenceResult {
	t.Helper()
	for _, ev := range m.Evidence {
		if ev.ID == id {
			return ev
		}
	}
	t.Fatalf("%s report has no evidence %s", m.Standard, id)
	return compliance.EvidenceResult{}
}
