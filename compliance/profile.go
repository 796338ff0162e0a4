package compliance

import (
	"bytes"
	"fmt"
	"io"
	"time"
)

// MaxProfileSize bounds a profile file; a real one is a few kilobytes.
const MaxProfileSize = 256 << 10

// DefaultRemediationDays is the fix target used when a profile sets none:
// the 90 days that coordinated disclosure conventionally allows.
const DefaultRemediationDays = 90

// Profile is what the manufacturer declares about the product (evidence
// kind D). Every yes/no fact is a *bool that must be present: a deleted
// line must not silently turn into "no" and make provisions N/A.
type Profile struct {
	Product       Product       `yaml:"product"`
	SupportPeriod SupportPeriod `yaml:"support_period"`
	Disclosure    Disclosure    `yaml:"vulnerability_disclosure"`
	Device        Device        `yaml:"device"`
	Passwords     Passwords     `yaml:"passwords"`
	Updates       Updates       `yaml:"updates"`
	Data          Data          `yaml:"data"`
	// Statements: per standard, requirement ID → how the product meets it,
	// for what koshin cannot observe.
	Statements map[string]map[string]string `yaml:"statements"`
	// Justifications: per standard, requirement ID → why a recommendation
	// is not met (EN 303 645 provision 4-1).
	Justifications map[string]map[string]string `yaml:"justifications"`
}

// Product identifies the product and its manufacturer.
type Product struct {
	Model            string `yaml:"model"`
	Manufacturer     string `yaml:"manufacturer"`
	Address          string `yaml:"address"`
	DocumentationURL string `yaml:"documentation_url"`
}

// SupportPeriod is the published security-update support period.
type SupportPeriod struct {
	End         string `yaml:"end"` // YYYY-MM-DD, last day of support
	PublishedAt string `yaml:"published_at"`
}

// Disclosure is the vulnerability disclosure policy.
type Disclosure struct {
	Contact          string `yaml:"contact"` // https URL or e-mail address
	PolicyURL        string `yaml:"policy_url"`
	AcknowledgeDays  int    `yaml:"acknowledge_days"`
	StatusUpdateDays int    `yaml:"status_update_days"`
	RemediationDays  int    `yaml:"remediation_target_days"`
	// PreferredLanguages are language tags (RFC 5646) in which reports
	// are welcome, most preferred first; security.txt lists them.
	PreferredLanguages []string `yaml:"preferred_languages"`
}

// Device holds hardware and interface facts.
type Device struct {
	Constrained        *bool     `yaml:"constrained"`
	UserAuthentication *bool     `yaml:"user_authentication"`
	HardCodedIdentity  *bool     `yaml:"hard_coded_identity"`
	DebugPort          DebugPort `yaml:"debug_port"`
	ExternalSensors    []string  `yaml:"external_sensors"`
}

// DebugPort describes a debug interface (EN 303 645 condition 13).
type DebugPort struct {
	PhysicallyAccessible *bool `yaml:"physically_accessible"`
	DisabledInSoftware   *bool `yaml:"disabled_in_software"`
}

// Passwords describes how passwords are used (conditions 1 and 2).
type Passwords struct {
	Used         *bool  `yaml:"used"`
	PreInstalled *bool  `yaml:"pre_installed"`
	Generation   string `yaml:"generation"`
}

// Updates describes the update mechanism (conditions 3, 9, 11, 12).
type Updates struct {
	Mechanism        *bool `yaml:"mechanism"`
	OverNetwork      *bool `yaml:"over_network"`
	Automatic        *bool `yaml:"automatic"`
	Notifications    *bool `yaml:"notifications"`
	EnabledByDefault *bool `yaml:"enabled_by_default"`
}

// Data describes telemetry and personal data (conditions 6 and 7).
type Data struct {
	Telemetry    *bool `yaml:"telemetry"`
	PersonalData *bool `yaml:"personal_data"`
	ConsentBased *bool `yaml:"consent_based"`
}

// LoadProfile reads and validates a profile. Unknown fields, duplicate
// keys, more than one document and anything over MaxProfileSize are
// refused; all validation problems are reported together.
func LoadProfile(r io.Reader) (*Profile, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxProfileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read profile: %w", err)
	}
	if len(b) > MaxProfileSize {
		return nil, fmt.Errorf("profile is larger than %d bytes", MaxProfileSize)
	}
	p := new(Profile)
	if err := decodeStrict(bytes.NewReader(b), p); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// SupportEnd is the last day of support (valid after Validate).
func (p *Profile) SupportEnd() time.Time {
	t, _ := time.Parse(time.DateOnly, p.SupportPeriod.End)
	return t
}

// RemediationDays is the fix target, DefaultRemediationDays if unset.
func (p *Profile) RemediationDays() int {
	if p.Disclosure.RemediationDays == 0 {
		return DefaultRemediationDays
	}
	return p.Disclosure.RemediationDays
}

// Statement returns the manufacturer's statement for a requirement.
func (p *Profile) Statement(std Standard, id string) (string, bool) {
	s, ok := p.Statements[string(std)][id]
	return s, ok
}

// Justification returns the recorded reason a requirement is not met.
func (p *Profile) Justification(std Standard, id string) (string, bool) {
	s, ok := p.Justifications[string(std)][id]
	return s, ok
}

// is dereferences a validated *bool.
func is(b *bool) bool { return b != nil && *b }
