package advisory

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Summary is what a device shows its user about a security update, and
// what operators see next to a release (EN 303 645 5.3-11): which risks
// the update removes and how serious they are.
type Summary struct {
	// ID is the advisory's tracking ID (signed in the release's advisories).
	ID    string `json:"id"`
	Title string `json:"title"`
	// Severity is the highest CVSS v3 rating among the vulnerabilities
	// ("CRITICAL", "HIGH", "MEDIUM", "LOW", "NONE"), else the publisher's
	// aggregate severity, else "".
	Severity string  `json:"severity,omitempty"`
	MaxScore float64 `json:"max_score,omitempty"`
	// Description is the document's summary note, if it has one.
	Description     string              `json:"description,omitempty"`
	Vulnerabilities []VulnerabilityNote `json:"vulnerabilities"`
	Publisher       string              `json:"publisher"`
	Released        string              `json:"released"` // current_release_date
}

// VulnerabilityNote is one fixed vulnerability in a summary.
type VulnerabilityNote struct {
	CVE      string  `json:"cve,omitempty"`
	Title    string  `json:"title,omitempty"`
	Severity string  `json:"severity,omitempty"`
	Score    float64 `json:"score,omitempty"`
	// Fix is the vendor-fix remediation's details, if any.
	Fix string `json:"fix,omitempty"`
}

var severityRank = map[string]int{"NONE": 1, "LOW": 2, "MEDIUM": 3, "HIGH": 4, "CRITICAL": 5}

// Summarize extracts the user-facing summary of a validated advisory.
func (c *CSAF) Summarize() Summary {
	d := &c.Document
	s := Summary{ID: d.Tracking.ID, Title: d.Title, Publisher: d.Publisher.Name, Released: d.Tracking.CurrentReleaseDate,
		Vulnerabilities: []VulnerabilityNote{}}
	for _, n := range d.Notes {
		if n.Category == "summary" || (s.Description == "" && n.Category == "description") {
			s.Description = n.Text
		}
	}
	for _, v := range c.Vulnerabilities {
		note := VulnerabilityNote{CVE: v.CVE, Title: v.Title}
		note.Score, note.Severity = highestScore(v.Scores)
		if severityRank[note.Severity] > severityRank[s.Severity] || (note.Severity == s.Severity && note.Score > s.MaxScore) {
			s.Severity, s.MaxScore = note.Severity, note.Score
		}
		for _, r := range v.Remediations {
			if r.Category == "vendor_fix" {
				note.Fix = r.Details
				break
			}
		}
		s.Vulnerabilities = append(s.Vulnerabilities, note)
	}
	if s.Severity == "" && d.AggregateSeverity != nil {
		s.Severity = d.AggregateSeverity.Text
	}
	return s
}

func highestScore(ss []Score) (float64, string) {
	best, sev := -1.0, ""
	for _, s := range ss {
		var c CVSSv3
		if !present(s.CVSSv3) || json.Unmarshal(s.CVSSv3, &c) != nil {
			continue
		}
		if c.BaseScore > best {
			best, sev = c.BaseScore, c.BaseSeverity
		}
	}
	return max(best, 0), sev
}

// CVEs lists the advisory's CVE IDs, sorted.
func (c *CSAF) CVEs() []string {
	var out []string
	for _, v := range c.Vulnerabilities {
		if v.CVE != "" {
			out = append(out, v.CVE)
		}
	}
	slices.Sort(out)
	return out
}

// Text renders the summary in plain words for a device's user: why the
// update matters, one line per fixed vulnerability.
func (s Summary) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Security update %s: %s", s.ID, s.Title)
	if s.Severity != "" {
		fmt.Fprintf(&b, " (severity %s)", strings.ToLower(s.Severity))
	}
	b.WriteString("\n")
	if s.Description != "" {
		b.WriteString(s.Description + "\n")
	}
	for _, v := range s.Vulnerabilities {
		b.WriteString("- ")
		b.WriteString(cmpOr(v.CVE, "vulnerability"))
		if v.Title != "" {
			b.WriteString(": " + v.Title)
		}
		if v.Severity != "" {
			fmt.Fprintf(&b, " (%s, CVSS %.1f)", strings.ToLower(v.Severity), v.Score)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
