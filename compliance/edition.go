package compliance

import (
	"fmt"
	"slices"
)

// editionDelta is catalog/en303645-v3.1.3.yaml: how V3.1.3 numbering
// differs from V2.1.1, limited to what koshin's sources state.
type editionDelta struct {
	Standard    Standard `yaml:"standard"`
	Title       string   `yaml:"title"`
	Edition     string   `yaml:"edition"`
	Base        string   `yaml:"base"`
	DataVersion int      `yaml:"data_version"`
	Source      string   `yaml:"source"`
	Added       []struct {
		Group  Group  `yaml:"group"`
		Before string `yaml:"before"`
	} `yaml:"added"`
	Splits []struct {
		From string   `yaml:"from"`
		Into []string `yaml:"into"`
	} `yaml:"splits"`
}

// loadV313 builds the V3.1.3 catalogue from V2.1.1 and the delta. Split
// parts inherit their parent's status and evidence because the sources do
// not give theirs; the Change and Note fields say so in every report.
func loadV313() (*Catalogue, error) {
	base, err := LoadCatalogue(EN303645, EditionV211)
	if err != nil {
		return nil, err
	}
	var d editionDelta
	if err := decodeEmbedded("catalog/en303645-v3.1.3.yaml", &d); err != nil {
		return nil, err
	}
	if d.Standard != EN303645 || d.Edition != EditionV313 || d.Base != base.Edition {
		return nil, fmt.Errorf("V3.1.3 delta does not apply to %s %s", base.Standard, base.Edition)
	}
	c := *base
	c.Title, c.Edition, c.DataVersion, c.Source = d.Title, d.Edition, d.DataVersion, d.Source
	c.Groups = nil
	for _, g := range base.Groups {
		for _, a := range d.Added {
			if a.Before == g.ID {
				c.Groups = append(c.Groups, addedGroup(a.Group))
			}
		}
		c.Groups = append(c.Groups, splitGroup(g, d))
	}
	return &c, c.checkDelta(d)
}

func addedGroup(g Group) Group {
	for i := range g.Requirements {
		r := &g.Requirements[i]
		r.Unpublished, r.Text = true, ""
		r.Change = "added in V3.1.3; wording and status not in koshin's sources"
	}
	return g
}

func splitGroup(g Group, d editionDelta) Group {
	var out []Requirement
	for _, r := range g.Requirements {
		parts := splitParts(d, r.ID)
		if parts == nil {
			r.Change = "identical to V2.1.1"
			out = append(out, r)
			continue
		}
		for _, id := range parts {
			p := r
			p.ID = id
			p.Text = "Part of V2.1.1 " + r.ID + ": " + r.Text
			p.Change = "split from V2.1.1 " + r.ID + "; status and evidence inherited, part wording not in koshin's sources"
			out = append(out, p)
		}
	}
	g.Requirements = out
	return g
}

func splitParts(d editionDelta, id string) []string {
	for _, s := range d.Splits {
		if s.From == id {
			return s.Into
		}
	}
	return nil
}

// checkDelta makes sure every addition and split named in the delta took
// effect; a renamed anchor would otherwise drop it silently.
func (c *Catalogue) checkDelta(d editionDelta) error {
	ids := c.IDs()
	for _, a := range d.Added {
		for _, r := range a.Group.Requirements {
			if !slices.Contains(ids, r.ID) {
				return fmt.Errorf("V3.1.3 addition %s was not placed", r.ID)
			}
		}
	}
	for _, s := range d.Splits {
		if slices.Contains(ids, s.From) || len(s.Into) < 2 {
			return fmt.Errorf("V3.1.3 split of %s did not apply", s.From)
		}
	}
	return nil
}
