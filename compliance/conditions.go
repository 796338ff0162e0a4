package compliance

import "fmt"

// conditionRule ties an EN 303 645 table B.1 condition to the profile
// facts that decide it.
type conditionRule struct {
	fields string
	holds  func(*Profile) bool
}

var conditionRules = map[int]conditionRule{
	1:  {"passwords.used", func(p *Profile) bool { return is(p.Passwords.Used) }},
	2:  {"passwords.pre_installed", func(p *Profile) bool { return is(p.Passwords.PreInstalled) }},
	3:  {"updates.mechanism", func(p *Profile) bool { return !is(p.Updates.Mechanism) }},
	4:  {"device.constrained", func(p *Profile) bool { return is(p.Device.Constrained) }},
	5:  {"device.constrained", func(p *Profile) bool { return !is(p.Device.Constrained) }},
	6:  {"data.telemetry", func(p *Profile) bool { return is(p.Data.Telemetry) }},
	7:  {"data.consent_based", func(p *Profile) bool { return is(p.Data.ConsentBased) }},
	8:  {"device.user_authentication", func(p *Profile) bool { return is(p.Device.UserAuthentication) }},
	9:  {"updates.automatic, updates.notifications", func(p *Profile) bool { return is(p.Updates.Automatic) || is(p.Updates.Notifications) }},
	10: {"device.hard_coded_identity", func(p *Profile) bool { return is(p.Device.HardCodedIdentity) }},
	11: {"updates.over_network", func(p *Profile) bool { return is(p.Updates.OverNetwork) }},
	12: {"updates.mechanism", func(p *Profile) bool { return is(p.Updates.Mechanism) }},
	13: {"device.debug_port.physically_accessible", func(p *Profile) bool { return is(p.Device.DebugPort.PhysicallyAccessible) }},
}

// ConditionResult is one condition of table B.1 decided for the product.
type ConditionResult struct {
	Number int    `json:"number"`
	Text   string `json:"text"`
	Holds  bool   `json:"holds"`
	// Fields are the profile fields that decide it.
	Fields string `json:"profile_fields"`
}

func evaluateConditions(c *Catalogue, p *Profile) ([]ConditionResult, error) {
	var out []ConditionResult
	for _, cd := range c.Conditions {
		rule, ok := conditionRules[cd.Number]
		if !ok {
			return nil, fmt.Errorf("no rule for condition %d", cd.Number)
		}
		out = append(out, ConditionResult{Number: cd.Number, Text: cd.Text, Holds: rule.holds(p), Fields: rule.fields})
	}
	return out, nil
}
