package advisory

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// MaxSBOMSize bounds a CycloneDX document: a full Linux root file system
// with licences and hashes for thousands of packages stays well below it.
const MaxSBOMSize = 16 << 20

// Limits of an SBOM's parts.
const (
	maxComponents   = 100_000
	maxDependencies = 100_000
)

// CycloneDX specification versions koshin reads (JSON since 1.2).
var specVersions = []string{"1.2", "1.3", "1.4", "1.5", "1.6"}

var (
	serialPattern = regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	hashContent   = regexp.MustCompile(`^([a-fA-F0-9]{32}|[a-fA-F0-9]{40}|[a-fA-F0-9]{64}|[a-fA-F0-9]{96}|[a-fA-F0-9]{128})$`)
)

var (
	componentTypes = []string{"application", "framework", "library", "container", "platform", "operating-system",
		"device", "device-driver", "firmware", "file", "machine-learning-model", "data", "cryptographic-asset"}
	hashAlgorithms = []string{"MD5", "SHA-1", "SHA-256", "SHA-384", "SHA-512", "SHA3-256", "SHA3-384", "SHA3-512",
		"BLAKE2b-256", "BLAKE2b-384", "BLAKE2b-512", "BLAKE3"}
)

// SBOM is the part of a CycloneDX JSON document koshin reads.
type SBOM struct {
	BOMFormat    string       `json:"bomFormat"`
	SpecVersion  string       `json:"specVersion"`
	SerialNumber string       `json:"serialNumber,omitempty"`
	Version      *int         `json:"version,omitempty"`
	Metadata     *BOMMetadata `json:"metadata,omitempty"`
	Components   []Component  `json:"components,omitempty"`
	Dependencies []Dependency `json:"dependencies,omitempty"`
}

// BOMMetadata describes what the SBOM is about.
type BOMMetadata struct {
	Timestamp string     `json:"timestamp,omitempty"`
	Component *Component `json:"component,omitempty"`
}

// Component is one software or hardware part.
type Component struct {
	Type       string      `json:"type"`
	BOMRef     string      `json:"bom-ref,omitempty"`
	Group      string      `json:"group,omitempty"`
	Name       string      `json:"name"`
	Version    string      `json:"version,omitempty"`
	PURL       string      `json:"purl,omitempty"`
	CPE        string      `json:"cpe,omitempty"`
	Hashes     []Hash      `json:"hashes,omitempty"`
	Components []Component `json:"components,omitempty"`
}

// Hash is a component's digest.
type Hash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

// Dependency says which components a component depends on.
type Dependency struct {
	Ref       string   `json:"ref"`
	DependsOn []string `json:"dependsOn,omitempty"`
}

// ParseCycloneDX decodes and validates a CycloneDX JSON SBOM.
func ParseCycloneDX(b []byte) (*SBOM, error) {
	if len(b) > MaxSBOMSize {
		return nil, fmt.Errorf("%w: SBOM of %d bytes, limit %d", ErrTooLarge, len(b), MaxSBOMSize)
	}
	if err := checkJSON(b); err != nil {
		return nil, err
	}
	s := new(SBOM)
	if err := decodeStrict(b, s, false); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// Validate checks format, version, every component's required fields and
// forms, unique bom-refs, and that dependencies name known bom-refs.
func (s *SBOM) Validate() error {
	v := &sbomValidator{refs: map[string]bool{}}
	if s.BOMFormat != "CycloneDX" {
		v.ps.add("bomFormat", "must be \"CycloneDX\"")
	}
	if !slices.Contains(specVersions, s.SpecVersion) {
		v.ps.add("specVersion", "must be one of %s", strings.Join(specVersions, ", "))
	}
	if s.SerialNumber != "" && !serialPattern.MatchString(s.SerialNumber) {
		v.ps.add("serialNumber", "must be urn:uuid: and a lowercase RFC 4122 UUID")
	}
	if s.Version != nil && *s.Version < 1 {
		v.ps.add("version", "must be at least 1")
	}
	if s.Metadata != nil && s.Metadata.Component != nil {
		v.component("metadata.component", s.Metadata.Component, 0)
	}
	v.components("components", s.Components, 0)
	v.dependencies(s.Dependencies)
	return v.ps.err("CycloneDX")
}

type sbomValidator struct {
	ps    problems
	refs  map[string]bool
	count int
}

func (v *sbomValidator) components(path string, cs []Component, depth int) {
	for i := range cs {
		v.component(fmt.Sprintf("%s[%d]", path, i), &cs[i], depth)
	}
}

func (v *sbomValidator) component(path string, c *Component, depth int) {
	if v.count++; v.count == maxComponents+1 {
		v.ps.add("components", "more than %d components", maxComponents)
	}
	if depth >= maxDepth/2 {
		v.ps.add(path, "components nest too deep")
		return
	}
	if !slices.Contains(componentTypes, c.Type) {
		v.ps.add(path+".type", "%q is not a CycloneDX component type", clip(c.Type))
	}
	for _, f := range []struct{ name, value string }{{"name", c.Name}, {"group", c.Group}, {"version", c.Version}, {"cpe", c.CPE}} {
		if (f.name == "name" && f.value == "") || len(f.value) > maxShortText || !printable(f.value) {
			v.ps.add(path+"."+f.name, "must be printable text of at most %d bytes%s", maxShortText, map[bool]string{true: " and is required"}[f.name == "name"])
		}
	}
	if c.PURL != "" && (!strings.HasPrefix(c.PURL, "pkg:") || len(c.PURL) > maxShortText || !printable(c.PURL)) {
		v.ps.add(path+".purl", "must be a package URL (pkg:…)")
	}
	if c.BOMRef != "" {
		if v.refs[c.BOMRef] {
			v.ps.add(path+".bom-ref", "%q is used twice", clip(c.BOMRef))
		}
		v.refs[c.BOMRef] = true
	}
	for j, h := range c.Hashes {
		if !slices.Contains(hashAlgorithms, h.Alg) || !hashContent.MatchString(h.Content) {
			v.ps.add(fmt.Sprintf("%s.hashes[%d]", path, j), "needs a CycloneDX algorithm and a hex digest")
		}
	}
	v.components(path+".components", c.Components, depth+1)
}

func (v *sbomValidator) dependencies(ds []Dependency) {
	if len(ds) > maxDependencies {
		v.ps.add("dependencies", "more than %d entries", maxDependencies)
		return
	}
	for i, d := range ds {
		path := fmt.Sprintf("dependencies[%d]", i)
		if !v.refs[d.Ref] {
			v.ps.add(path+".ref", "%q names no component's bom-ref", clip(d.Ref))
		}
		for _, on := range d.DependsOn {
			if !v.refs[on] {
				v.ps.add(path+".dependsOn", "%q names no component's bom-ref", clip(on))
			}
		}
	}
}

// ComponentCount counts components at every level.
func (s *SBOM) ComponentCount() int {
	var count func([]Component) int
	count = func(cs []Component) int {
		n := len(cs)
		for _, c := range cs {
			n += count(c.Components)
		}
		return n
	}
	return count(s.Components)
}
