package compliance_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/koshin-ota/koshin/compliance"
)

// The template written by `koshin compliance init` is refused until every
// placeholder and yes/no question is answered, and names each one.
func TestTemplateNeedsEditing(t *testing.T) {
	_, err := compliance.LoadProfile(bytes.NewReader(compliance.ProfileTemplate()))
	var pe *compliance.ProfileError
	if !errors.As(err, &pe) {
		t.Fatalf("template accepted or wrong error: %v", err)
	}
	var paths []string
	for _, p := range pe.Problems {
		paths = append(paths, strings.SplitN(p, ":", 2)[0])
	}
	want := []string{
		"product.model", "product.manufacturer", "support_period.end", "vulnerability_disclosure.contact",
		"device.constrained", "device.user_authentication", "device.hard_coded_identity",
		"device.debug_port.physically_accessible", "passwords.used", "passwords.pre_installed",
		"data.telemetry", "data.personal_data", "data.consent_based",
	}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("template problems (-want +got):\n%s", diff)
	}
}

// Answering the template's questions yields a valid profile: the template
// documents exactly the fields LoadProfile accepts.
func TestTemplateFilledIn(t *testing.T) {
	filled := strings.NewReplacer(
		"model: CHANGE-ME", "model: KX-1",
		"manufacturer: CHANGE-ME", "manufacturer: Example Ltd",
		"end: CHANGE-ME", "end: 2030-06-30",
		"contact: CHANGE-ME", "contact: https://example.com/security",
		"constrained:\n", "constrained: false\n",
		"user_authentication:\n", "user_authentication: false\n",
		"hard_coded_identity:\n", "hard_coded_identity: false\n",
		"physically_accessible:\n", "physically_accessible: false\n",
		"used:\n", "used: false\n",
		"pre_installed:\n", "pre_installed: false\n",
		"telemetry:\n", "telemetry: true\n",
		"personal_data:\n", "personal_data: false\n",
		"consent_based:\n", "consent_based: false\n",
	).Replace(string(compliance.ProfileTemplate()))
	p, err := compliance.LoadProfile(strings.NewReader(filled))
	if err != nil {
		t.Fatal(err)
	}
	if p.RemediationDays() != 90 || p.Product.Model != "KX-1" || !*p.Updates.EnabledByDefault {
		t.Errorf("filled template read as %+v", p)
	}
}

func mustProfileYAML(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/profile.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Parser-level refusals: the document as a whole is wrong.
func TestLoadProfileRefusesDocuments(t *testing.T) {
	base := mustProfileYAML(t)
	tests := []struct {
		name, doc, want string
	}{
		{"empty", "", "empty document"},
		{"unknown field", base + "colour: red\n", "field colour not found"},
		{"misspelt nested field", strings.Replace(base, "  constrained:", "  constrainted:", 1), "field constrainted not found"},
		{"duplicate key", base + "product:\n  model: X\n", "already defined"},
		{"two documents", base + "---\nproduct: {}\n", "more than one YAML document"},
		{"wrong type", strings.Replace(base, "acknowledge_days: 5", "acknowledge_days: soon", 1), "cannot unmarshal"},
		{"too large", base + "# " + strings.Repeat("x", compliance.MaxProfileSize) + "\n", "larger than"},
	}
	for _, tt := range tests {
		_, err := compliance.LoadProfile(strings.NewReader(tt.doc))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}

// Field-level refusals, each reported under its YAML path.
func TestProfileValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*compliance.Profile)
		want   string
	}{
		{"no model", func(p *compliance.Profile) { p.Product.Model = "" }, "product.model: required"},
		{"multi-line model", func(p *compliance.Profile) { p.Product.Model = "a\nb" }, "product.model: must be one line"},
		{"control character", func(p *compliance.Profile) { p.Product.Address = "a\x00b" }, "product.address: contains control"},
		{"impossible date", func(p *compliance.Profile) { p.SupportPeriod.End = "2031-02-30" }, "support_period.end: \"2031-02-30\" is not a date"},
		{"date format", func(p *compliance.Profile) { p.SupportPeriod.End = "31.12.2031" }, "support_period.end"},
		{"year out of range", func(p *compliance.Profile) { p.SupportPeriod.End = "1999-12-31" }, "support_period.end"},
		{"http URL", func(p *compliance.Profile) { p.Product.DocumentationURL = "http://example.com" }, "product.documentation_url: \"http://example.com\" is not an https URL"},
		{"bad contact", func(p *compliance.Profile) { p.Disclosure.Contact = "Security Team <sec@example.com>" }, "neither an https URL nor an e-mail"},
		{"zero acknowledge days", func(p *compliance.Profile) { p.Disclosure.AcknowledgeDays = 0 }, "acknowledge_days: must be 1 to 365"},
		{"huge remediation", func(p *compliance.Profile) { p.Disclosure.RemediationDays = 5000 }, "remediation_target_days"},
		{"language", func(p *compliance.Profile) { p.Disclosure.PreferredLanguages = []string{"en", "English"} }, `"English" is not a language tag`},
		{"missing fact", func(p *compliance.Profile) { p.Data.Telemetry = nil }, "data.telemetry: required (true or false)"},
		{"debug port state", func(p *compliance.Profile) { p.Device.DebugPort.DisabledInSoftware = nil }, "disabled_in_software: required"},
		{"duplicate sensor", func(p *compliance.Profile) { p.Device.ExternalSensors = []string{"a", "a"} }, "duplicate \"a\""},
		{"pre-installed without use", func(p *compliance.Profile) { p.Passwords.Used = boolp(false); p.Passwords.PreInstalled = boolp(true) }, "passwords.pre_installed: true although"},
		{"pre-installed without generation", func(p *compliance.Profile) { p.Passwords.PreInstalled = boolp(true) }, "passwords.generation: required"},
		{"generation without pre-installed", func(p *compliance.Profile) { p.Passwords.Generation = "x" }, "only meaningful"},
		{"no mechanism but automatic", func(p *compliance.Profile) { p.Updates.Mechanism = boolp(false) }, "updates.mechanism: false although"},
		{"default on without features", func(p *compliance.Profile) {
			p.Updates.Automatic, p.Updates.Notifications = boolp(false), boolp(false)
		}, "updates.enabled_by_default: true although"},
		{"consent without personal data", func(p *compliance.Profile) { p.Data.PersonalData = boolp(false) }, "data.consent_based: true although"},
		{"unknown standard", func(p *compliance.Profile) { p.Statements["iso27001"] = map[string]string{"A.5": "x"} }, "statements.iso27001: unknown standard"},
		{"unknown ID", func(p *compliance.Profile) { p.Statements["en303645"]["5.99-1"] = "x" }, "no requirement 5.99-1"},
		{"justified mandatory", func(p *compliance.Profile) { p.Justifications["en303645"]["5.1-1"] = "x" }, "5.1-1 is mandatory"},
		{"met and justified", func(p *compliance.Profile) { p.Justifications["en303645"]["5.6-9"] = "x" }, "also has a statement"},
		{"PSTI statement", func(p *compliance.Profile) { p.Statements["psti"] = map[string]string{"PSTI-1": "x"} }, "answered through EN 303 645"},
		{"placeholder in statement", func(p *compliance.Profile) { p.Statements["en303645"]["6-1"] = "CHANGE-ME" }, "placeholder"},
		{"empty statement", func(p *compliance.Profile) { p.Statements["ccds"]["ORG04"] = "" }, "statements.ccds.ORG04: required"},
	}
	for _, tt := range tests {
		p := MustProfile(t)
		tt.mutate(p)
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}

// A profile may answer V3.1.3-only provisions too.
func TestProfileAcceptsV313IDs(t *testing.T) {
	p := MustProfile(t)
	p.Statements["en303645"]["5.0-1"] = "covered"
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
}
