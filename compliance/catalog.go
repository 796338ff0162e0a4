package compliance

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

//go:embed catalog/*.yaml
var catalogFS embed.FS

// Standard names a requirement catalogue.
type Standard string

const (
	EN303645 Standard = "en303645" // ETSI EN 303 645
	CCDS     Standard = "ccds"     // CCDS software-update guideline
	OTA      Standard = "ota"      // OTA IoT Trust Framework
	JCSTAR   Standard = "jcstar"   // JC-STAR ★1
	PSTI     Standard = "psti"     // UK PSTI security requirements
)

// Standards lists every catalogue in report order.
var Standards = []Standard{EN303645, CCDS, OTA, JCSTAR, PSTI}

// Editions of EN 303 645. V2.1.1 is the default numbering; V3.1.3 is a
// delta on it (catalog/en303645-v3.1.3.yaml).
const (
	EditionV211 = "V2.1.1"
	EditionV313 = "V3.1.3"
)

// TextNotPublished stands in for a requirement whose wording koshin's
// sources do not give; koshin never invents it.
const TextNotPublished = "Wording not published in koshin's sources."

// ParseStandard accepts one of the Standards.
func ParseStandard(s string) (Standard, error) {
	if slices.Contains(Standards, Standard(s)) {
		return Standard(s), nil
	}
	return "", fmt.Errorf("unknown standard %q (want en303645, ccds, ota, jcstar or psti)", s)
}

// Catalogue is one standard's requirements, grouped by clause.
type Catalogue struct {
	Standard    Standard    `yaml:"standard"`
	Title       string      `yaml:"title"`
	Edition     string      `yaml:"edition"`
	DataVersion int         `yaml:"data_version"`
	Source      string      `yaml:"source"`
	Note        string      `yaml:"note"`
	Conditions  []Condition `yaml:"conditions"`
	Groups      []Group     `yaml:"groups"`
}

// Condition is a numbered condition of EN 303 645 table B.1.
type Condition struct {
	Number int    `yaml:"number"`
	Text   string `yaml:"text"`
}

// Group is a clause or category of requirements.
type Group struct {
	ID           string        `yaml:"id"`
	Title        string        `yaml:"title"`
	Requirements []Requirement `yaml:"requirements"`
}

// Requirement is one provision, requirement or item.
type Requirement struct {
	ID string `yaml:"id"`
	// Status is M or R (EN 303 645, PSTI), required or recommended (OTA),
	// empty where the sources give none (JC-STAR, V3.1.3 additions).
	Status string `yaml:"status"`
	// Conditions are EN 303 645 condition numbers; the provision applies
	// only when all of them hold.
	Conditions []int  `yaml:"conditions"`
	Level      string `yaml:"level"` // CCDS: A, B or C
	Text       string `yaml:"text"`
	// Unpublished: the sources do not give the wording (Text is empty).
	Unpublished bool `yaml:"unpublished"`
	// Evidence are IDs of rows in catalog/evidence.yaml.
	Evidence []string `yaml:"evidence"`
	// NeedsStatement: koshin evidences the update path only, so a "yes"
	// also needs the manufacturer's statement for the rest of the product.
	NeedsStatement bool `yaml:"needs_statement"`
	// Refs are EN 303 645 provisions this requirement is evaluated through.
	Refs []string `yaml:"refs"`
	// Rule names a computed evaluation ("justifications": provision 4-1).
	Rule string `yaml:"rule"`
	Note string `yaml:"note"`
	// Change says how the provision relates to the base edition
	// (V3.1.3 only).
	Change string `yaml:"-"`
}

// Label is the status as printed in reports: "M C(9,12)", "B", "required".
func (r *Requirement) Label() string {
	s := r.Status
	if r.Level != "" {
		s = r.Level
	}
	if s == "" {
		return "—"
	}
	if len(r.Conditions) == 0 {
		return s
	}
	nums := make([]string, len(r.Conditions))
	for i, c := range r.Conditions {
		nums[i] = strconv.Itoa(c)
	}
	return s + " C(" + strings.Join(nums, ",") + ")"
}

// Mandatory reports whether the requirement must be met (M or required).
func (r *Requirement) Mandatory() bool { return r.Status == "M" || r.Status == "required" }

// Recommended reports whether it is a recommendation (R or recommended).
func (r *Requirement) Recommended() bool { return r.Status == "R" || r.Status == "recommended" }

// DisplayText is Text, or TextNotPublished when the sources lack it.
func (r *Requirement) DisplayText() string {
	if r.Unpublished {
		return TextNotPublished
	}
	return r.Text
}

// Requirement finds a requirement by ID.
func (c *Catalogue) Requirement(id string) (*Requirement, bool) {
	for gi := range c.Groups {
		for ri := range c.Groups[gi].Requirements {
			if r := &c.Groups[gi].Requirements[ri]; r.ID == id {
				return r, true
			}
		}
	}
	return nil, false
}

// IDs lists every requirement ID in catalogue order.
func (c *Catalogue) IDs() []string {
	var ids []string
	for _, g := range c.Groups {
		for _, r := range g.Requirements {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// condition returns the text of condition n.
func (c *Catalogue) condition(n int) (string, bool) {
	for _, cd := range c.Conditions {
		if cd.Number == n {
			return cd.Text, true
		}
	}
	return "", false
}

var catalogueFiles = map[Standard]string{
	EN303645: "catalog/en303645-v2.1.1.yaml",
	CCDS:     "catalog/ccds-v1.0.yaml",
	OTA:      "catalog/ota-v2.5.yaml",
	JCSTAR:   "catalog/jcstar-star1.yaml",
	PSTI:     "catalog/psti.yaml",
}

// LoadCatalogue parses the embedded catalogue of std. edition selects the
// EN 303 645 numbering (empty means V2.1.1); other standards have one
// edition and accept only "". Each call returns a fresh copy.
func LoadCatalogue(std Standard, edition string) (*Catalogue, error) {
	if std == EN303645 && edition == EditionV313 {
		return loadV313()
	}
	if edition != "" && !(std == EN303645 && edition == EditionV211) {
		return nil, fmt.Errorf("%s has no edition %q", std, edition)
	}
	name, ok := catalogueFiles[std]
	if !ok {
		return nil, fmt.Errorf("unknown standard %q", std)
	}
	c := new(Catalogue)
	if err := decodeEmbedded(name, c); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// shared holds every catalogue and the evidence catalogue, parsed once.
// Reports only read them; LoadCatalogue and LoadEvidence hand out fresh
// copies for callers that may modify what they get.
var shared = sync.OnceValues(func() (*sharedData, error) {
	d := &sharedData{catalogues: map[string]*Catalogue{}}
	for _, std := range Standards {
		editions := []string{""}
		if std == EN303645 {
			editions = append(editions, EditionV313)
		}
		for _, e := range editions {
			c, err := LoadCatalogue(std, e)
			if err != nil {
				return nil, err
			}
			d.catalogues[string(std)+"/"+e] = c
		}
	}
	var err error
	d.evidence, err = LoadEvidence()
	return d, err
})

type sharedData struct {
	catalogues map[string]*Catalogue // "std/edition"
	evidence   *Evidence
}

// sharedCatalogue returns the read-only catalogue of std and edition.
func sharedCatalogue(std Standard, edition string) (*Catalogue, error) {
	d, err := shared()
	if err != nil {
		return nil, err
	}
	if std == EN303645 && edition == EditionV211 {
		edition = ""
	}
	c, ok := d.catalogues[string(std)+"/"+edition]
	if !ok {
		return nil, fmt.Errorf("%s has no edition %q", std, edition)
	}
	return c, nil
}

// decodeEmbedded strictly decodes one embedded YAML file: a typo in a
// field name must fail the build's tests, not silently drop data.
func decodeEmbedded(name string, v any) error {
	b, err := catalogFS.ReadFile(name)
	if err != nil {
		return err
	}
	if err := decodeStrict(bytes.NewReader(b), v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// decodeStrict decodes exactly one YAML document, rejecting unknown fields.
func decodeStrict(r io.Reader, v any) error {
	d := yaml.NewDecoder(r)
	d.KnownFields(true)
	if err := d.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty document")
		}
		return err
	}
	var extra yaml.Node
	if err := d.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document")
	}
	return nil
}
