package compliance

import (
	"fmt"
	"slices"
)

// Module is koshin's module path; TestRef packages are relative to it.
const Module = "github.com/koshin-ota/koshin"

// Kind says where a piece of evidence comes from.
type Kind string

const (
	KindTest     Kind = "T" // an automated koshin test
	KindFleet    Kind = "F" // observed in the running fleet
	KindDeclared Kind = "D" // declared in the product profile
)

// EvidenceDef is one row of catalog/evidence.yaml.
type EvidenceDef struct {
	ID    string    `yaml:"id"`
	Kind  Kind      `yaml:"kind"`
	Claim string    `yaml:"claim"`
	Tests []TestRef `yaml:"tests"` // T
	Fact  string    `yaml:"fact"`  // F: the fact check's name (facts.go)
	Field string    `yaml:"field"` // D: the declared check's name (declared.go)
}

// TestRef names Go test functions in one package of the module.
type TestRef struct {
	// Package is relative to the module root; "." is the root package.
	Package string   `yaml:"package" json:"package"`
	Names   []string `yaml:"names" json:"names"`
}

// ImportPath is the full import path of the referenced package.
func (t TestRef) ImportPath() string {
	if t.Package == "." {
		return Module
	}
	return Module + "/" + t.Package
}

// Evidence is the evidence catalogue.
type Evidence struct {
	DataVersion int           `yaml:"data_version"`
	Rows        []EvidenceDef `yaml:"rows"`
}

// LoadEvidence parses the embedded evidence catalogue.
func LoadEvidence() (*Evidence, error) {
	e := new(Evidence)
	if err := decodeEmbedded("catalog/evidence.yaml", e); err != nil {
		return nil, err
	}
	return e, e.validate()
}

// Row finds an evidence row by ID.
func (e *Evidence) Row(id string) (EvidenceDef, bool) {
	i := slices.IndexFunc(e.Rows, func(r EvidenceDef) bool { return r.ID == id })
	if i < 0 {
		return EvidenceDef{}, false
	}
	return e.Rows[i], true
}

func (e *Evidence) validate() error {
	if e.DataVersion < 1 {
		return fmt.Errorf("evidence: data_version is required")
	}
	seen := map[string]bool{}
	for _, r := range e.Rows {
		if r.ID == "" || seen[r.ID] || r.Claim == "" {
			return fmt.Errorf("evidence %q: empty or duplicate ID, or no claim", r.ID)
		}
		seen[r.ID] = true
		if err := r.validate(); err != nil {
			return fmt.Errorf("evidence %s: %w", r.ID, err)
		}
	}
	return nil
}

// validate checks that each kind carries exactly its own source.
func (r EvidenceDef) validate() error {
	hasTests, hasFact, hasField := len(r.Tests) > 0, r.Fact != "", r.Field != ""
	var ok bool
	switch r.Kind {
	case KindTest:
		ok = hasTests && !hasFact && !hasField
	case KindFleet:
		ok = hasFact && !hasTests && !hasField
		if _, known := factChecks[r.Fact]; !known {
			return fmt.Errorf("no check for fact %q", r.Fact)
		}
	case KindDeclared:
		ok = hasField && !hasTests && !hasFact
		if _, known := declaredChecks[r.Field]; !known {
			return fmt.Errorf("no check for profile field %q", r.Field)
		}
	default:
		return fmt.Errorf("kind %q is not T, F or D", r.Kind)
	}
	if !ok {
		return fmt.Errorf("kind %s needs exactly its own source (T: tests, F: fact, D: field)", r.Kind)
	}
	for _, t := range r.Tests {
		if t.Package == "" || len(t.Names) == 0 {
			return fmt.Errorf("test reference without package or names")
		}
	}
	return nil
}
