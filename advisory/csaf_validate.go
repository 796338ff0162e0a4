package advisory

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of a CSAF document's parts, far above real advisories.
const (
	maxVulnerabilities = 1000
	maxProducts        = 10_000
	maxListLen         = 10_000 // product IDs in one status list, notes, scores…
	maxShortText       = 1024   // titles, names, IDs
	maxLongText        = 64 << 10
)

var (
	// AdvisoryID is what koshin signs into a release's advisories: it is
	// also trust.TargetCustom's rule.
	advisoryIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
	cvePattern        = regexp.MustCompile(`^CVE-[0-9]{4}-[0-9]{4,}$`)
	versionPattern    = regexp.MustCompile(`^(0|[1-9][0-9]*)$|^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	langPattern       = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,8}$`)
)

// Enumerations of the CSAF 2.0 schema.
var (
	csafCategories        = []string{CategorySecurityAdvisory, CategoryVEX}
	publisherCategories   = []string{"coordinator", "discoverer", "other", "translator", "user", "vendor"}
	noteCategories        = []string{"description", "details", "faq", "general", "legal_disclaimer", "other", "summary"}
	trackingStatuses      = []string{"final", "interim"}
	branchCategories      = []string{"architecture", "host_name", "language", "legacy", "patch_level", "product_family", "product_name", "product_version", "product_version_range", "service_pack", "specification", "vendor"}
	relationCategories    = []string{"default_component_of", "external_component_of", "installed_on", "installed_with", "optional_component_of"}
	remediationCategories = []string{"mitigation", "no_fix_planned", "none_available", "vendor_fix", "workaround"}
	threatCategories      = []string{"exploit_status", "impact", "target_set"}
)

// Validate checks the document against the rules koshin relies on: the
// CSAF 2.0 schema's required members and enumerations for the parts it
// reads, and the specification's mandatory tests on product references
// (6.1.1, 6.1.2, 6.1.6, 6.1.23, 6.1.29).
func (c *CSAF) Validate() error {
	v := &csafValidator{defined: map[string]bool{}, groups: map[string]bool{}}
	v.document(&c.Document)
	if c.ProductTree != nil {
		v.productTree(c.ProductTree)
	}
	v.vulnerabilities(c.Vulnerabilities)
	return v.ps.err("CSAF")
}

type csafValidator struct {
	ps       problems
	defined  map[string]bool // product IDs
	groups   map[string]bool // product group IDs
	products int
}

func (v *csafValidator) document(d *Document) {
	if d.CSAFVersion != "2.0" {
		v.ps.add("document.csaf_version", "must be \"2.0\"")
	}
	if !slices.Contains(csafCategories, d.Category) {
		v.ps.add("document.category", "must be %s or %s, not %q", CategorySecurityAdvisory, CategoryVEX, clip(d.Category))
	}
	v.text("document.title", d.Title, maxShortText, true)
	v.lang("document.lang", d.Lang)
	v.lang("document.source_lang", d.SourceLang)
	v.notes("document.notes", d.Notes)
	if s := d.AggregateSeverity; s != nil {
		v.text("document.aggregate_severity.text", s.Text, maxShortText, true)
	}
	p := d.Publisher
	v.enum("document.publisher.category", p.Category, publisherCategories)
	v.text("document.publisher.name", p.Name, maxShortText, true)
	v.url("document.publisher.namespace", p.Namespace, true)
	v.text("document.publisher.contact_details", p.ContactDetails, maxShortText, false)
	v.text("document.publisher.issuing_authority", p.IssuingAuthority, maxLongText, false)
	v.tracking(&d.Tracking)
}

func (v *csafValidator) tracking(t *Tracking) {
	if !advisoryIDPattern.MatchString(t.ID) {
		v.ps.add("document.tracking.id", "must be 1-128 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit, to be signed as the release's advisory ID")
	}
	if t.Status == "draft" {
		v.ps.add("document.tracking.status", "a draft advisory cannot ship with a release; publish it as interim or final")
	} else {
		v.enum("document.tracking.status", t.Status, trackingStatuses)
	}
	if !versionPattern.MatchString(t.Version) {
		v.ps.add("document.tracking.version", "must be an integer or a semantic version")
	}
	initial := v.date("document.tracking.initial_release_date", t.InitialReleaseDate, true)
	current := v.date("document.tracking.current_release_date", t.CurrentReleaseDate, true)
	if !initial.IsZero() && !current.IsZero() && current.Before(initial) {
		v.ps.add("document.tracking", "current_release_date is before initial_release_date")
	}
	if len(t.RevisionHistory) == 0 || len(t.RevisionHistory) > maxListLen {
		v.ps.add("document.tracking.revision_history", "needs 1-%d entries", maxListLen)
	}
	for i, r := range t.RevisionHistory {
		path := fmt.Sprintf("document.tracking.revision_history[%d]", i)
		v.date(path+".date", r.Date, true)
		if !versionPattern.MatchString(r.Number) {
			v.ps.add(path+".number", "must be an integer or a semantic version")
		}
		v.text(path+".summary", r.Summary, maxLongText, true)
	}
}

func (v *csafValidator) productTree(t *ProductTree) {
	v.branches("product_tree.branches", t.Branches, 0)
	for i := range t.FullProductNames {
		v.define(fmt.Sprintf("product_tree.full_product_names[%d]", i), &t.FullProductNames[i])
	}
	for i := range t.Relationships {
		v.define(fmt.Sprintf("product_tree.relationships[%d].full_product_name", i), &t.Relationships[i].FullProductName)
	}
	// References are checked once every definition is known: a
	// relationship may name a product defined after it.
	for i, r := range t.Relationships {
		path := fmt.Sprintf("product_tree.relationships[%d]", i)
		v.enum(path+".category", r.Category, relationCategories)
		v.refs(path+".product_reference", []string{r.ProductReference})
		v.refs(path+".relates_to_product_reference", []string{r.RelatesToProductReference})
	}
	for i, g := range t.ProductGroups {
		path := fmt.Sprintf("product_tree.product_groups[%d]", i)
		if v.id(path+".group_id", g.GroupID) && v.groups[g.GroupID] {
			v.ps.add(path+".group_id", "%q is defined twice", clip(g.GroupID))
		}
		v.groups[g.GroupID] = true
		if len(g.ProductIDs) < 2 {
			v.ps.add(path+".product_ids", "a group has at least two products")
		}
		v.refs(path+".product_ids", g.ProductIDs)
		v.text(path+".summary", g.Summary, maxShortText, false)
	}
}

func (v *csafValidator) branches(path string, bs []Branch, depth int) {
	if depth >= maxDepth/2 {
		v.ps.add(path, "branches nest too deep")
		return
	}
	for i := range bs {
		b := &bs[i]
		p := fmt.Sprintf("%s[%d]", path, i)
		v.enum(p+".category", b.Category, branchCategories)
		v.text(p+".name", b.Name, maxShortText, true)
		if (b.Product == nil) == (len(b.Branches) == 0) {
			v.ps.add(p, "a branch has either sub-branches or a product")
		}
		if b.Product != nil {
			v.define(p+".product", b.Product)
		}
		v.branches(p+".branches", b.Branches, depth+1)
	}
}

// define records a product ID (CSAF test 6.1.2: defined once).
func (v *csafValidator) define(path string, p *FullProductName) {
	v.text(path+".name", p.Name, maxShortText, true)
	if !v.id(path+".product_id", p.ProductID) {
		return
	}
	if v.defined[p.ProductID] {
		v.ps.add(path+".product_id", "%q is defined twice", clip(p.ProductID))
	}
	v.defined[p.ProductID] = true
	if v.products++; v.products == maxProducts+1 {
		v.ps.add("product_tree", "more than %d products", maxProducts)
	}
}

func (v *csafValidator) vulnerabilities(vs []Vulnerability) {
	if len(vs) == 0 || len(vs) > maxVulnerabilities {
		v.ps.add("vulnerabilities", "needs 1-%d entries: an advisory says which vulnerabilities the release concerns", maxVulnerabilities)
		return
	}
	cves := map[string]bool{}
	for i := range vs {
		path := fmt.Sprintf("vulnerabilities[%d]", i)
		u := &vs[i]
		switch {
		case u.CVE != "" && !cvePattern.MatchString(u.CVE):
			v.ps.add(path+".cve", "%q is not a CVE ID", clip(u.CVE))
		case u.CVE != "" && cves[u.CVE]:
			v.ps.add(path+".cve", "%s is listed twice", u.CVE)
		case u.CVE == "" && !present(u.IDs):
			v.ps.add(path, "needs a cve or ids")
		}
		cves[u.CVE] = true
		v.text(path+".title", u.Title, maxShortText, false)
		v.date(path+".discovery_date", u.DiscoveryDate, false)
		v.date(path+".release_date", u.ReleaseDate, false)
		v.notes(path+".notes", u.Notes)
		v.productStatus(path+".product_status", u.ProductStatus)
		v.remediations(path+".remediations", u.Remediations)
		v.scores(path+".scores", u.Scores)
		v.threats(path+".threats", u.Threats)
	}
}

// productStatus requires at least one status and no product in two
// contradicting ones (CSAF test 6.1.6).
func (v *csafValidator) productStatus(path string, s *ProductStatus) {
	if s == nil {
		v.ps.add(path, "required: which products are affected and which fixed")
		return
	}
	classes := []struct {
		name  string
		lists [][]string
	}{
		{"affected", [][]string{s.FirstAffected, s.KnownAffected, s.LastAffected}},
		{"not affected", [][]string{s.KnownNotAffected}},
		{"fixed", [][]string{s.FirstFixed, s.Fixed}},
		{"under investigation", [][]string{s.UnderInvestigation}},
	}
	class := map[string]string{}
	n := 0
	for _, c := range classes {
		for _, list := range c.lists {
			n += len(list)
			v.refs(path, list)
			for _, id := range list {
				if prev, ok := class[id]; ok && prev != c.name {
					v.ps.add(path, "product %q is both %s and %s", clip(id), prev, c.name)
				}
				class[id] = c.name
			}
		}
	}
	v.refs(path+".recommended", s.Recommended)
	if n == 0 {
		v.ps.add(path, "lists no product")
	}
}

func (v *csafValidator) remediations(path string, rs []Remediation) {
	v.count(path, len(rs))
	for i, r := range rs {
		p := fmt.Sprintf("%s[%d]", path, i)
		v.enum(p+".category", r.Category, remediationCategories)
		v.text(p+".details", r.Details, maxLongText, true)
		v.date(p+".date", r.Date, false)
		v.url(p+".url", r.URL, false)
		if len(r.ProductIDs) == 0 && len(r.GroupIDs) == 0 {
			v.ps.add(p, "names no product_ids or group_ids (CSAF test 6.1.29)")
		}
		v.refs(p+".product_ids", r.ProductIDs)
		v.groupRefs(p+".group_ids", r.GroupIDs)
	}
}

func (v *csafValidator) scores(path string, ss []Score) {
	v.count(path, len(ss))
	for i, s := range ss {
		p := fmt.Sprintf("%s[%d]", path, i)
		if len(s.Products) == 0 {
			v.ps.add(p+".products", "required")
		}
		v.refs(p+".products", s.Products)
		if !present(s.CVSSv2) && !present(s.CVSSv3) {
			v.ps.add(p, "needs cvss_v3 or cvss_v2")
		}
		if present(s.CVSSv3) {
			v.cvss(p+".cvss_v3", s.CVSSv3)
		}
	}
}

// cvss checks a v3 score: version, vector prefix, score range and the
// severity the score implies.
func (v *csafValidator) cvss(path string, raw json.RawMessage) {
	var c CVSSv3
	if err := json.Unmarshal(raw, &c); err != nil {
		v.ps.add(path, "not a CVSS v3 object")
		return
	}
	if c.Version != "3.0" && c.Version != "3.1" {
		v.ps.add(path+".version", "must be 3.0 or 3.1")
	} else if !strings.HasPrefix(c.VectorString, "CVSS:"+c.Version+"/") || len(c.VectorString) > 256 {
		v.ps.add(path+".vectorString", "must start with CVSS:%s/", c.Version)
	}
	if c.BaseScore < 0 || c.BaseScore > 10 {
		v.ps.add(path+".baseScore", "must be 0 to 10")
	} else if want := severityOf(c.BaseScore); c.BaseSeverity != want {
		v.ps.add(path+".baseSeverity", "%q does not match base score %.1f (%s)", clip(c.BaseSeverity), c.BaseScore, want)
	}
}

func (v *csafValidator) threats(path string, ts []Threat) {
	v.count(path, len(ts))
	for i, t := range ts {
		p := fmt.Sprintf("%s[%d]", path, i)
		v.enum(p+".category", t.Category, threatCategories)
		v.text(p+".details", t.Details, maxLongText, true)
		v.date(p+".date", t.Date, false)
		v.refs(p+".product_ids", t.ProductIDs)
		v.groupRefs(p+".group_ids", t.GroupIDs)
	}
}

func (v *csafValidator) notes(path string, ns []Note) {
	v.count(path, len(ns))
	for i, n := range ns {
		p := fmt.Sprintf("%s[%d]", path, i)
		v.enum(p+".category", n.Category, noteCategories)
		v.text(p+".text", n.Text, maxLongText, true)
		v.text(p+".title", n.Title, maxShortText, false)
		v.text(p+".audience", n.Audience, maxShortText, false)
	}
}

// refs checks product references (CSAF test 6.1.1).
func (v *csafValidator) refs(path string, ids []string) {
	v.count(path, len(ids))
	for _, id := range ids {
		if !v.defined[id] {
			v.ps.add(path, "product %q is not defined in product_tree", clip(id))
		}
	}
}

func (v *csafValidator) groupRefs(path string, ids []string) {
	v.count(path, len(ids))
	for _, id := range ids {
		if !v.groups[id] {
			v.ps.add(path, "group %q is not defined in product_tree.product_groups", clip(id))
		}
	}
}

func (v *csafValidator) count(path string, n int) {
	if n > maxListLen {
		v.ps.add(path, "more than %d entries", maxListLen)
	}
}

// id checks a product or group ID: non-empty, bounded, without leading or
// trailing white space (the schema's pattern).
func (v *csafValidator) id(path, s string) bool {
	if s == "" || len(s) > maxShortText || strings.TrimSpace(s) != s || !utf8.ValidString(s) {
		v.ps.add(path, "must be 1-%d characters without surrounding white space", maxShortText)
		return false
	}
	return true
}

func (v *csafValidator) enum(path, s string, allowed []string) {
	if !slices.Contains(allowed, s) {
		v.ps.add(path, "%q is not one of %s", clip(s), strings.Join(allowed, ", "))
	}
}

// text checks a string shown to people: valid UTF-8, no control
// characters but line breaks and tabs, bounded.
func (v *csafValidator) text(path, s string, max int, required bool) {
	switch {
	case s == "" && required:
		v.ps.add(path, "required")
	case len(s) > max:
		v.ps.add(path, "longer than %d bytes", max)
	case !printable(s):
		v.ps.add(path, "holds invalid UTF-8 or control characters")
	}
}

func (v *csafValidator) date(path, s string, required bool) time.Time {
	if s == "" {
		if required {
			v.ps.add(path, "required")
		}
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		v.ps.add(path, "must be an RFC 3339 date and time")
	}
	return t
}

func (v *csafValidator) url(path, s string, required bool) {
	if s == "" {
		if required {
			v.ps.add(path, "required")
		}
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(s) > maxShortText {
		v.ps.add(path, "must be an absolute http or https URL")
	}
}

func (v *csafValidator) lang(path, s string) {
	if s != "" && !langPattern.MatchString(s) {
		v.ps.add(path, "must be a language tag such as en or de-DE")
	}
}

// present reports whether an optional raw member holds a value.
func present(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' {
			return false
		}
	}
	return true
}

// severityOf is the CVSS v3 qualitative rating of a base score.
func severityOf(score float64) string {
	switch {
	case score == 0:
		return "NONE"
	case score < 4:
		return "LOW"
	case score < 7:
		return "MEDIUM"
	case score < 9:
		return "HIGH"
	}
	return "CRITICAL"
}
