package compliance

import (
	"fmt"
	"strings"
	"time"
)

// declaredCheck judges one part of the profile. now decides whether the
// support period has ended; it is a parameter so reports are reproducible.
type declaredCheck func(p *Profile, now time.Time) outcome

// declaredChecks are named by evidence rows' "field".
var declaredChecks = map[string]declaredCheck{
	"model":                    checkModel,
	"support_period":           checkSupportPeriod,
	"vulnerability_disclosure": checkDisclosure,
	"passwords":                checkPasswords,
	"update_defaults":          checkUpdateDefaults,
	"debug_port":               checkDebugPort,
	"external_sensors":         checkSensors,
	"personal_data":            checkPersonalData,
}

func checkModel(p *Profile, _ time.Time) outcome {
	return pass(fmt.Sprintf("model designation %q by %s", p.Product.Model, p.Product.Manufacturer))
}

func checkSupportPeriod(p *Profile, now time.Time) outcome {
	end := p.SupportPeriod.End
	if !now.Before(p.SupportEnd().AddDate(0, 0, 1)) {
		return fail("support period ended on "+end, "the support period ended on "+end+"; the product no longer receives security updates")
	}
	if p.SupportPeriod.PublishedAt == "" {
		return missing("security updates until " + end + "; where this is published is not stated (support_period.published_at)")
	}
	return pass("security updates until " + end + ", published at " + p.SupportPeriod.PublishedAt)
}

func checkDisclosure(p *Profile, _ time.Time) outcome {
	d := p.Disclosure
	obs := fmt.Sprintf("contact %s; acknowledgement within %d days, status updates every %d days, fixes targeted within %d days",
		d.Contact, d.AcknowledgeDays, d.StatusUpdateDays, p.RemediationDays())
	switch {
	case d.PolicyURL != "":
		return pass(obs + "; policy at " + d.PolicyURL)
	case strings.HasPrefix(d.Contact, "https://"):
		return pass(obs)
	}
	return missing(obs + "; where the policy is published is not stated (vulnerability_disclosure.policy_url)")
}

func checkPasswords(p *Profile, _ time.Time) outcome {
	switch {
	case !is(p.Passwords.Used):
		return info("the device uses no passwords")
	case is(p.Passwords.PreInstalled):
		return pass("pre-installed passwords are unique per device: " + p.Passwords.Generation)
	}
	return pass("no pre-installed passwords: the user sets a password before first use")
}

func checkUpdateDefaults(p *Profile, _ time.Time) outcome {
	u := p.Updates
	var on []string
	if is(u.Automatic) {
		on = append(on, "automatic updates")
	}
	if is(u.Notifications) {
		on = append(on, "update notifications")
	}
	switch {
	case !is(u.Mechanism):
		return info("the device has no update mechanism")
	case len(on) == 0:
		return info("updates are started by the user only")
	case !is(u.EnabledByDefault):
		return fail(strings.Join(on, " and ")+" are supported but off when the device is set up", "")
	}
	return pass(strings.Join(on, " and ") + " are on when the device is set up; the user can change them")
}

func checkDebugPort(p *Profile, _ time.Time) outcome {
	d := p.Device.DebugPort
	switch {
	case !is(d.PhysicallyAccessible):
		return info("no physically accessible debug interface")
	case is(d.DisabledInSoftware):
		return pass("the physically accessible debug interface is disabled in software")
	}
	return fail("the physically accessible debug interface is enabled", "")
}

func checkSensors(p *Profile, _ time.Time) outcome {
	list := "no external sensing capabilities"
	if s := p.Device.ExternalSensors; len(s) > 0 {
		list = "external sensors: " + strings.Join(s, ", ")
	}
	if p.Product.DocumentationURL == "" {
		return missing(list + "; where they are documented is not stated (product.documentation_url)")
	}
	return pass(list + "; documented at " + p.Product.DocumentationURL)
}

func checkPersonalData(p *Profile, _ time.Time) outcome {
	if is(p.Data.PersonalData) {
		return missing("personal data is processed; a statement must say how this requirement is met")
	}
	return pass("the product processes no personal data")
}
