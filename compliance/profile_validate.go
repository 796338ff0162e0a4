package compliance

import (
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// Placeholder marks template values the manufacturer must replace;
// LoadProfile refuses a profile that still contains it, so an unedited
// template never reaches an assessor.
const Placeholder = "CHANGE-ME"

// Limits on profile values.
const (
	maxLineLen      = 200
	maxTextLen      = 4000
	maxSensors      = 32
	maxProfileNotes = 1000 // statements + justifications
)

// ProfileError lists every problem found in a profile, each prefixed with
// its YAML path, so the manufacturer can fix them in one pass.
type ProfileError struct{ Problems []string }

func (e *ProfileError) Error() string {
	return "invalid profile:" + joinProblems(e.Problems)
}

func joinProblems(ps []string) string { return "\n  " + strings.Join(ps, "\n  ") }

type problems []string

func (ps *problems) add(path, format string, args ...any) {
	*ps = append(*ps, path+": "+fmt.Sprintf(format, args...))
}

// Validate checks every field and the consistency between them.
func (p *Profile) Validate() error {
	var ps problems
	p.validateProduct(&ps)
	p.validateDisclosure(&ps)
	p.validateFacts(&ps)
	p.validateConsistency(&ps)
	p.validateNotes(&ps)
	if len(ps) > 0 {
		return &ProfileError{Problems: ps}
	}
	return nil
}

func (p *Profile) validateProduct(ps *problems) {
	checkLine(ps, "product.model", p.Product.Model, true)
	checkLine(ps, "product.manufacturer", p.Product.Manufacturer, true)
	checkText(ps, "product.address", p.Product.Address, false)
	checkURL(ps, "product.documentation_url", p.Product.DocumentationURL, false)
	checkDate(ps, "support_period.end", p.SupportPeriod.End)
	checkURL(ps, "support_period.published_at", p.SupportPeriod.PublishedAt, false)
}

func (p *Profile) validateDisclosure(ps *problems) {
	d := p.Disclosure
	checkContact(ps, "vulnerability_disclosure.contact", d.Contact)
	checkURL(ps, "vulnerability_disclosure.policy_url", d.PolicyURL, false)
	checkDays(ps, "vulnerability_disclosure.acknowledge_days", d.AcknowledgeDays, 1, 365)
	checkDays(ps, "vulnerability_disclosure.status_update_days", d.StatusUpdateDays, 1, 365)
	if d.RemediationDays != 0 {
		checkDays(ps, "vulnerability_disclosure.remediation_target_days", d.RemediationDays, 1, 3650)
	}
	if len(d.PreferredLanguages) > maxLanguages {
		ps.add("vulnerability_disclosure.preferred_languages", "at most %d languages", maxLanguages)
	}
	for _, l := range d.PreferredLanguages {
		if !languageTag.MatchString(l) {
			ps.add("vulnerability_disclosure.preferred_languages", "%q is not a language tag such as en or de-CH", l)
		}
	}
}

// maxLanguages bounds vulnerability_disclosure.preferred_languages.
const maxLanguages = 16

var languageTag = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}$`)

// validateFacts requires every yes/no fact to be stated explicitly.
func (p *Profile) validateFacts(ps *problems) {
	facts := []struct {
		path string
		v    *bool
	}{
		{"device.constrained", p.Device.Constrained},
		{"device.user_authentication", p.Device.UserAuthentication},
		{"device.hard_coded_identity", p.Device.HardCodedIdentity},
		{"device.debug_port.physically_accessible", p.Device.DebugPort.PhysicallyAccessible},
		{"passwords.used", p.Passwords.Used},
		{"passwords.pre_installed", p.Passwords.PreInstalled},
		{"updates.mechanism", p.Updates.Mechanism},
		{"updates.over_network", p.Updates.OverNetwork},
		{"updates.automatic", p.Updates.Automatic},
		{"updates.notifications", p.Updates.Notifications},
		{"updates.enabled_by_default", p.Updates.EnabledByDefault},
		{"data.telemetry", p.Data.Telemetry},
		{"data.personal_data", p.Data.PersonalData},
		{"data.consent_based", p.Data.ConsentBased},
	}
	for _, f := range facts {
		if f.v == nil {
			ps.add(f.path, "required (true or false)")
		}
	}
	if is(p.Device.DebugPort.PhysicallyAccessible) && p.Device.DebugPort.DisabledInSoftware == nil {
		ps.add("device.debug_port.disabled_in_software", "required when the debug port is physically accessible")
	}
	if len(p.Device.ExternalSensors) > maxSensors {
		ps.add("device.external_sensors", "at most %d entries", maxSensors)
	}
	for i, s := range p.Device.ExternalSensors {
		checkLine(ps, fmt.Sprintf("device.external_sensors[%d]", i), s, true)
		if slices.Index(p.Device.ExternalSensors, s) != i {
			ps.add(fmt.Sprintf("device.external_sensors[%d]", i), "duplicate %q", s)
		}
	}
}

// validateConsistency rejects combinations that cannot describe a real
// device, because they would make the condition logic of table B.1 lie.
func (p *Profile) validateConsistency(ps *problems) {
	pw, u, d := p.Passwords, p.Updates, p.Data
	if is(pw.PreInstalled) && !is(pw.Used) {
		ps.add("passwords.pre_installed", "true although passwords.used is false")
	}
	if is(pw.PreInstalled) {
		checkText(ps, "passwords.generation", pw.Generation, true)
	} else if pw.Generation != "" {
		ps.add("passwords.generation", "only meaningful with pre-installed passwords")
	}
	if u.Mechanism != nil && !*u.Mechanism && (is(u.OverNetwork) || is(u.Automatic) || is(u.Notifications) || is(u.EnabledByDefault)) {
		ps.add("updates.mechanism", "false although other update facts are true")
	}
	if is(u.EnabledByDefault) && !is(u.Automatic) && !is(u.Notifications) {
		ps.add("updates.enabled_by_default", "true although neither automatic updates nor notifications are supported")
	}
	if is(d.ConsentBased) && !is(d.PersonalData) {
		ps.add("data.consent_based", "true although data.personal_data is false")
	}
}

// validateNotes checks statements and justifications: known standards and
// IDs, bounded text, and no requirement both met and justified as unmet.
func (p *Profile) validateNotes(ps *problems) {
	n := 0
	for _, std := range sortedKeys(p.Statements) {
		n += len(p.Statements[std])
		checkNotes(ps, "statements", std, p.Statements[std], false)
	}
	for _, std := range sortedKeys(p.Justifications) {
		notes := p.Justifications[std]
		n += len(notes)
		checkNotes(ps, "justifications", std, notes, true)
		for _, id := range sortedKeys(notes) {
			if _, both := p.Statements[std][id]; both {
				ps.add("justifications."+std+"."+id, "also has a statement; a requirement is either met or justified")
			}
		}
	}
	if n > maxProfileNotes {
		ps.add("statements", "more than %d statements and justifications", maxProfileNotes)
	}
}

func checkNotes(ps *problems, kind, std string, notes map[string]string, justification bool) {
	s, err := ParseStandard(std)
	if err != nil {
		ps.add(kind+"."+std, "%v", err)
		return
	}
	if s == PSTI {
		ps.add(kind+"."+std, "PSTI requirements are answered through EN 303 645; put these under en303645")
		return
	}
	index, err := requirementIndex()
	if err != nil {
		ps.add(kind, "%v", err)
		return
	}
	for _, id := range sortedKeys(notes) {
		path := kind + "." + std + "." + id
		r, ok := index[s][id]
		if !ok {
			ps.add(path, "no requirement %s in %s", id, s)
			continue
		}
		if justification && r.Mandatory() {
			ps.add(path, "%s is mandatory; only recommendations can be justified as not met (provision 4-1)", id)
		}
		checkText(ps, path, notes[id], true)
	}
}

// requirementIndex maps every standard to its requirements in all
// editions, so one profile serves both EN 303 645 numberings.
var requirementIndex = sync.OnceValues(func() (map[Standard]map[string]Requirement, error) {
	d, err := shared()
	if err != nil {
		return nil, err
	}
	index := map[Standard]map[string]Requirement{}
	for _, c := range d.catalogues {
		if index[c.Standard] == nil {
			index[c.Standard] = map[string]Requirement{}
		}
		for _, g := range c.Groups {
			for _, r := range g.Requirements {
				index[c.Standard][r.ID] = r
			}
		}
	}
	return index, nil
})

func checkLine(ps *problems, path, s string, required bool) {
	if checkText(ps, path, s, required) && (len(s) > maxLineLen || strings.ContainsAny(s, "\n\t")) {
		ps.add(path, "must be one line of at most %d bytes", maxLineLen)
	}
}

// checkText reports whether s is present and acceptable so far.
func checkText(ps *problems, path, s string, required bool) bool {
	switch {
	case s == "":
		if required {
			ps.add(path, "required")
		}
		return false
	case strings.Contains(s, Placeholder):
		ps.add(path, "still contains the template placeholder %s", Placeholder)
	case len(s) > maxTextLen || !utf8.ValidString(s):
		ps.add(path, "must be valid UTF-8 of at most %d bytes", maxTextLen)
	case strings.IndexFunc(s, isBadControl) >= 0:
		ps.add(path, "contains control characters")
	default:
		return true
	}
	return false
}

func isBadControl(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }

func checkDate(ps *problems, path, s string) {
	if !checkText(ps, path, s, true) {
		return
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || t.Year() < 2000 || t.Year() > 2200 {
		ps.add(path, "%q is not a date YYYY-MM-DD between 2000 and 2200", s)
	}
}

func checkDays(ps *problems, path string, n, lo, hi int) {
	if n < lo || n > hi {
		ps.add(path, "must be %d to %d days, not %d", lo, hi, n)
	}
}

// checkURL accepts absolute https URLs only: links in a conformance
// statement must not lead users to an unauthenticated page.
func checkURL(ps *problems, path, s string, required bool) {
	if !checkText(ps, path, s, required) {
		return
	}
	if u, err := url.Parse(s); err != nil || u.Scheme != "https" || u.Host == "" || len(s) > maxLineLen {
		ps.add(path, "%q is not an https URL of at most %d bytes", s, maxLineLen)
	}
}

// checkContact accepts an https URL or a bare e-mail address.
func checkContact(ps *problems, path, s string) {
	if !checkText(ps, path, s, true) {
		return
	}
	if strings.HasPrefix(s, "https://") {
		checkURL(ps, path, s, true)
		return
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		ps.add(path, "%q is neither an https URL nor an e-mail address", s)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
