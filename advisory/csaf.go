package advisory

import (
	"encoding/json"
	"fmt"
)

// MaxCSAFSize bounds a CSAF document. An advisory for one release lists a
// handful of vulnerabilities; a megabyte leaves room for long product
// trees without letting a document exhaust a small device.
const MaxCSAFSize = 1 << 20

// CSAF categories (document.category) koshin accepts: the profiles that
// say which products a vulnerability affects and which fix it.
const (
	CategorySecurityAdvisory = "csaf_security_advisory"
	CategoryVEX              = "csaf_vex"
)

// CSAF is the part of a CSAF 2.0 document koshin reads. The members it
// does not interpret (acknowledgments, references, CVSS v2, product
// identification helpers…) are kept as raw JSON: they are allowed, but
// not checked beyond being well-formed.
type CSAF struct {
	Document        Document        `json:"document"`
	ProductTree     *ProductTree    `json:"product_tree,omitempty"`
	Vulnerabilities []Vulnerability `json:"vulnerabilities,omitempty"`
}

// Document is CSAF's document-level metadata.
type Document struct {
	Acknowledgments   json.RawMessage    `json:"acknowledgments,omitempty"`
	AggregateSeverity *AggregateSeverity `json:"aggregate_severity,omitempty"`
	Category          string             `json:"category"`
	CSAFVersion       string             `json:"csaf_version"`
	Distribution      json.RawMessage    `json:"distribution,omitempty"`
	Lang              string             `json:"lang,omitempty"`
	Notes             []Note             `json:"notes,omitempty"`
	Publisher         Publisher          `json:"publisher"`
	References        json.RawMessage    `json:"references,omitempty"`
	SourceLang        string             `json:"source_lang,omitempty"`
	Title             string             `json:"title"`
	Tracking          Tracking           `json:"tracking"`
}

// AggregateSeverity is the publisher's overall rating, in its own words.
type AggregateSeverity struct {
	Namespace string `json:"namespace,omitempty"`
	Text      string `json:"text"`
}

// Note is a piece of prose for readers.
type Note struct {
	Audience string `json:"audience,omitempty"`
	Category string `json:"category"`
	Text     string `json:"text"`
	Title    string `json:"title,omitempty"`
}

// Publisher is who issued the advisory.
type Publisher struct {
	Category         string `json:"category"`
	ContactDetails   string `json:"contact_details,omitempty"`
	IssuingAuthority string `json:"issuing_authority,omitempty"`
	Name             string `json:"name"`
	Namespace        string `json:"namespace"`
}

// Tracking identifies the advisory and its revisions.
type Tracking struct {
	Aliases            json.RawMessage `json:"aliases,omitempty"`
	CurrentReleaseDate string          `json:"current_release_date"`
	Generator          json.RawMessage `json:"generator,omitempty"`
	ID                 string          `json:"id"`
	InitialReleaseDate string          `json:"initial_release_date"`
	RevisionHistory    []Revision      `json:"revision_history"`
	Status             string          `json:"status"`
	Version            string          `json:"version"`
}

// Revision is one entry of the revision history.
type Revision struct {
	Date          string `json:"date"`
	LegacyVersion string `json:"legacy_version,omitempty"`
	Number        string `json:"number"`
	Summary       string `json:"summary"`
}

// ProductTree names the products vulnerabilities refer to.
type ProductTree struct {
	Branches         []Branch          `json:"branches,omitempty"`
	FullProductNames []FullProductName `json:"full_product_names,omitempty"`
	ProductGroups    []ProductGroup    `json:"product_groups,omitempty"`
	Relationships    []Relationship    `json:"relationships,omitempty"`
}

// Branch is one level of the vendor / product / version hierarchy.
type Branch struct {
	Branches []Branch         `json:"branches,omitempty"`
	Category string           `json:"category"`
	Name     string           `json:"name"`
	Product  *FullProductName `json:"product,omitempty"`
}

// FullProductName defines a product ID.
type FullProductName struct {
	Name                        string          `json:"name"`
	ProductID                   string          `json:"product_id"`
	ProductIdentificationHelper json.RawMessage `json:"product_identification_helper,omitempty"`
}

// ProductGroup names a set of products.
type ProductGroup struct {
	GroupID    string   `json:"group_id"`
	ProductIDs []string `json:"product_ids"`
	Summary    string   `json:"summary,omitempty"`
}

// Relationship defines a product made of others ("firmware X installed on
// device Y").
type Relationship struct {
	Category                  string          `json:"category"`
	FullProductName           FullProductName `json:"full_product_name"`
	ProductReference          string          `json:"product_reference"`
	RelatesToProductReference string          `json:"relates_to_product_reference"`
}

// Vulnerability is one vulnerability the advisory covers.
type Vulnerability struct {
	Acknowledgments json.RawMessage `json:"acknowledgments,omitempty"`
	CVE             string          `json:"cve,omitempty"`
	CWE             json.RawMessage `json:"cwe,omitempty"`
	DiscoveryDate   string          `json:"discovery_date,omitempty"`
	Flags           json.RawMessage `json:"flags,omitempty"`
	IDs             json.RawMessage `json:"ids,omitempty"`
	Involvements    json.RawMessage `json:"involvements,omitempty"`
	Notes           []Note          `json:"notes,omitempty"`
	ProductStatus   *ProductStatus  `json:"product_status,omitempty"`
	References      json.RawMessage `json:"references,omitempty"`
	ReleaseDate     string          `json:"release_date,omitempty"`
	Remediations    []Remediation   `json:"remediations,omitempty"`
	Scores          []Score         `json:"scores,omitempty"`
	Threats         []Threat        `json:"threats,omitempty"`
	Title           string          `json:"title,omitempty"`
}

// ProductStatus lists product IDs by how the vulnerability concerns them.
type ProductStatus struct {
	FirstAffected      []string `json:"first_affected,omitempty"`
	FirstFixed         []string `json:"first_fixed,omitempty"`
	Fixed              []string `json:"fixed,omitempty"`
	KnownAffected      []string `json:"known_affected,omitempty"`
	KnownNotAffected   []string `json:"known_not_affected,omitempty"`
	LastAffected       []string `json:"last_affected,omitempty"`
	Recommended        []string `json:"recommended,omitempty"`
	UnderInvestigation []string `json:"under_investigation,omitempty"`
}

// Remediation says what fixes or mitigates the vulnerability.
type Remediation struct {
	Category        string          `json:"category"`
	Date            string          `json:"date,omitempty"`
	Details         string          `json:"details"`
	Entitlements    json.RawMessage `json:"entitlements,omitempty"`
	GroupIDs        []string        `json:"group_ids,omitempty"`
	ProductIDs      []string        `json:"product_ids,omitempty"`
	RestartRequired json.RawMessage `json:"restart_required,omitempty"`
	URL             string          `json:"url,omitempty"`
}

// Score rates the vulnerability for some products. CVSS objects follow
// FIRST's own schemas; koshin reads the v3 base score and severity and
// keeps the rest as it is.
type Score struct {
	CVSSv2   json.RawMessage `json:"cvss_v2,omitempty"`
	CVSSv3   json.RawMessage `json:"cvss_v3,omitempty"`
	Products []string        `json:"products"`
}

// CVSSv3 is the part of a CVSS v3.x object koshin reads.
type CVSSv3 struct {
	Version      string  `json:"version"`
	VectorString string  `json:"vectorString"`
	BaseScore    float64 `json:"baseScore"`
	BaseSeverity string  `json:"baseSeverity"`
}

// Threat describes exploitation or impact.
type Threat struct {
	Category   string   `json:"category"`
	Date       string   `json:"date,omitempty"`
	Details    string   `json:"details"`
	GroupIDs   []string `json:"group_ids,omitempty"`
	ProductIDs []string `json:"product_ids,omitempty"`
}

// ParseCSAF decodes and validates a CSAF 2.0 advisory (see the package
// documentation for how strict it is). The advisory's tracking ID becomes
// the release's advisory ID, so it must also be a koshin advisory ID.
func ParseCSAF(b []byte) (*CSAF, error) {
	if len(b) > MaxCSAFSize {
		return nil, fmt.Errorf("%w: CSAF document of %d bytes, limit %d", ErrTooLarge, len(b), MaxCSAFSize)
	}
	if err := checkJSON(b); err != nil {
		return nil, err
	}
	c := new(CSAF)
	if err := decodeStrict(b, c, true); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}
