package compliance

import (
	"errors"
	"fmt"
	"slices"
)

// statuses lists the status values each standard's data may use; CCDS
// uses levels instead.
var statuses = map[Standard][]string{
	EN303645: {"M", "R"},
	PSTI:     {"M"},
	OTA:      {"required", "recommended"},
	CCDS:     {""},
	JCSTAR:   {""},
}

// validate checks the catalogue data for the mistakes a hand-edited file
// invites: duplicate IDs, unknown statuses or conditions, missing texts.
func (c *Catalogue) validate() error {
	if _, ok := catalogueFiles[c.Standard]; !ok {
		return fmt.Errorf("unknown standard %q", c.Standard)
	}
	if c.Title == "" || c.Edition == "" || c.DataVersion < 1 {
		return errors.New("title, edition and data_version are required")
	}
	if err := c.validateConditions(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, g := range c.Groups {
		if g.ID == "" || g.Title == "" || len(g.Requirements) == 0 {
			return fmt.Errorf("group %q: id, title and requirements are required", g.ID)
		}
		for i := range g.Requirements {
			r := &g.Requirements[i]
			if r.ID == "" || seen[r.ID] {
				return fmt.Errorf("requirement %q: empty or duplicate ID", r.ID)
			}
			seen[r.ID] = true
			if err := c.validateRequirement(r); err != nil {
				return fmt.Errorf("requirement %s: %w", r.ID, err)
			}
		}
	}
	return nil
}

func (c *Catalogue) validateConditions() error {
	for i, cd := range c.Conditions {
		if cd.Number != i+1 || cd.Text == "" {
			return fmt.Errorf("condition %d: numbers must run 1, 2, … and have a text", cd.Number)
		}
	}
	return nil
}

func (c *Catalogue) validateRequirement(r *Requirement) error {
	if !slices.Contains(statuses[c.Standard], r.Status) {
		return fmt.Errorf("status %q not allowed in %s", r.Status, c.Standard)
	}
	if (c.Standard == CCDS) != (r.Level != "") || !slices.Contains([]string{"", "A", "B", "C"}, r.Level) {
		return fmt.Errorf("level %q: CCDS requirements need A, B or C; others none", r.Level)
	}
	for _, n := range r.Conditions {
		if _, ok := c.condition(n); !ok {
			return fmt.Errorf("unknown condition %d", n)
		}
	}
	if r.Unpublished == (r.Text != "") {
		return errors.New("needs a text, or unpublished: true and no text")
	}
	if r.Rule != "" && r.Rule != "justifications" {
		return fmt.Errorf("unknown rule %q", r.Rule)
	}
	if len(r.Refs) > 0 && len(r.Evidence) > 0 {
		return errors.New("refs and evidence exclude each other")
	}
	return nil
}
