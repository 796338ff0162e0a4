package compliance

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Format is a report output format.
type Format string

const (
	FormatMarkdown Format = "md"
	FormatHTML     Format = "html"
	FormatJSON     Format = "json"
)

// ParseFormat accepts md, html or json.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatMarkdown, FormatHTML, FormatJSON:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q (want md, html or json)", s)
}

// Render writes m in format f. The PSTI report renders as a draft
// statement of compliance; every other standard as a requirement table
// followed by the evidence appendix.
func Render(w io.Writer, m *Model, f Format) error {
	switch f {
	case FormatMarkdown:
		return renderMarkdown(w, m)
	case FormatHTML:
		return renderHTML(w, m)
	case FormatJSON:
		return renderJSON(w, m)
	}
	return fmt.Errorf("unknown format %q", f)
}

func renderJSON(w io.Writer, m *Model) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

// columns names the requirement table's columns per standard; EN 303 645
// keeps table B.1's (Reference, Status, Support, Detail).
func (m *Model) columns() (ref, status string, withText bool) {
	switch m.Standard {
	case EN303645:
		return "Reference", "Status", false
	case CCDS:
		return "ID", "Level", true
	case OTA:
		return "Item", "Status", true
	}
	return "ID", "Status", true
}

// heading is the report's title line.
func (m *Model) heading() string {
	if m.Standard == PSTI {
		return "Statement of compliance — DRAFT"
	}
	return m.Title + " (" + m.Edition + "): conformance statement"
}

// kindList prints evidence kinds as "T, F".
func kindList(ks []Kind) string {
	if len(ks) == 0 {
		return "—"
	}
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// readyToSign reports whether every row is Y or N/A.
func (m *Model) readyToSign() bool { return m.Summary.No == 0 }

// testList prints a T row's tests as "pkg: A, B; pkg2: C".
func testList(ts []TestRef) string {
	var parts []string
	for _, t := range ts {
		pkg := strings.TrimPrefix(t.Package, Module+"/")
		if t.Package == Module {
			pkg = "koshin"
		}
		parts = append(parts, pkg+": "+strings.Join(t.Names, ", "))
	}
	return strings.Join(parts, "; ")
}

// orMissing shows a bracketed gap for the manufacturer to fill in.
func orMissing(s string) string {
	if s == "" {
		return "[to be completed]"
	}
	return s
}

// shows is the appendix's "What it shows" cell: the claim, and for
// anything but a passing test what was actually observed or declared.
func shows(e EvidenceResult) string {
	switch {
	case e.Kind == KindTest && e.Result == ResultPass:
		return e.Claim
	case e.Source == "statement" || e.Source == "justification":
		return e.Claim + ": " + e.Observation
	}
	return e.Claim + " Observed: " + e.Observation
}
