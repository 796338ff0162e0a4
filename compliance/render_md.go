package compliance

import (
	"fmt"
	"io"
	"strings"
)

// mdWriter accumulates Markdown; cells and inline text go through esc.
type mdWriter struct{ strings.Builder }

func (b *mdWriter) f(format string, args ...any) { fmt.Fprintf(b, format, args...) }

// esc makes profile- and fleet-supplied text inert in Markdown: it cannot
// break a table row, start a link, emphasis or code span, or inject HTML.
var mdEscaper = strings.NewReplacer(
	"\\", "\\\\", "|", "\\|", "*", "\\*", "_", "\\_", "`", "\\`", "[", "\\[", "]", "\\]",
	"<", "&lt;", ">", "&gt;", "#", "\\#", "\r\n", " ", "\n", " ", "\r", " ",
)

func esc(s string) string { return mdEscaper.Replace(s) }

func renderMarkdown(w io.Writer, m *Model) error {
	var b mdWriter
	b.f("# %s\n\n", esc(m.heading()))
	if m.Standard == PSTI {
		writePSTIMarkdown(&b, m)
	} else {
		writeFacts(&b, m)
		writeSummary(&b, m)
		writeFlags(&b, m)
		writeConditions(&b, m)
		writeTable(&b, m)
	}
	writeAppendix(&b, m)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeFacts(b *mdWriter, m *Model) {
	p := m.Product
	b.f("| | |\n|---|---|\n")
	b.f("| Product | %s (%s) |\n", esc(p.Model), esc(p.Manufacturer))
	b.f("| Support period ends | %s |\n", esc(p.SupportEnd))
	b.f("| Vulnerability disclosure | %s; acknowledgement within %d days, status every %d days |\n",
		esc(p.DisclosureContact), p.AcknowledgeDays, p.StatusUpdateDays)
	b.f("| Fleet data | %s |\n", esc(fleetLine(m.Fleet)))
	b.f("| Generated | %s by %s from catalogue data v%d, evidence data v%d |\n\n",
		m.GeneratedAt.Format("2006-01-02"), esc(orMissing(m.Generator)), m.Catalogue.DataVersion, m.Catalogue.EvidenceDataVersion)
	if m.Catalogue.Note != "" {
		b.f("Note: %s\n\n", esc(m.Catalogue.Note))
	}
}

func fleetLine(f *FleetInfo) string {
	if f == nil {
		return "none supplied: F evidence is missing"
	}
	return fmt.Sprintf("%d devices, observed %s over %d days", f.Devices, f.ObservedAt.Format("2006-01-02 15:04 MST"), f.WindowDays)
}

func writeSummary(b *mdWriter, m *Model) {
	s := m.Summary
	b.f("## Summary\n\n%d requirements: **%d Y**, **%d N** (%d of them not evidenced yet), **%d N/A**. "+
		"Mandatory requirements not met: %d. Flags: %d.\n\n",
		s.Requirements, s.Yes, s.No, s.Open, s.NotApplicable, s.MandatoryNotMet, s.Flags)
	b.f("Evidence kinds: **T** koshin test, **F** observed in the fleet, **D** declared by the manufacturer.\n\n")
}

func writeFlags(b *mdWriter, m *Model) {
	if len(m.Flags) == 0 {
		return
	}
	b.f("## Flags\n\n")
	for _, f := range m.Flags {
		b.f("- ⚠ **%s** (%s): %s\n", esc(strings.Join(f.Requirements, ", ")), esc(f.Evidence), esc(f.Message))
	}
	b.f("\n")
}

func writeConditions(b *mdWriter, m *Model) {
	if len(m.Conditions) == 0 {
		return
	}
	b.f("## Conditions\n\n| # | Condition | Holds | Decided by |\n|---|---|---|---|\n")
	for _, c := range m.Conditions {
		b.f("| %d | %s | %s | %s |\n", c.Number, esc(c.Text), yesNo(c.Holds), esc(c.Fields))
	}
	b.f("\n")
}

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

func writeTable(b *mdWriter, m *Model) {
	ref, status, withText := m.columns()
	for _, g := range m.Groups {
		b.f("## %s %s\n\n", esc(g.ID), esc(g.Title))
		if withText {
			b.f("| %s | %s | Requirement | Support | Detail | Evidence |\n|---|---|---|---|---|---|\n", ref, status)
		} else {
			b.f("| %s | %s | Support | Detail | Evidence |\n|---|---|---|---|---|\n", ref, status)
		}
		for _, r := range g.Rows {
			text := ""
			if withText {
				text = " " + esc(r.Text) + " |"
			}
			b.f("| %s | %s |%s %s | %s | %s |\n", esc(r.ID), esc(r.Status), text, r.Support, esc(rowDetail(r)), kindList(r.Kinds))
		}
		b.f("\n")
	}
}

// rowDetail adds the flag marker and the row's notes to its detail.
func rowDetail(r Row) string {
	d := r.Detail
	if r.Flagged {
		d = "⚠ " + d
	}
	for _, n := range []string{r.Note, r.Change} {
		if n != "" {
			d += " (" + n + ")"
		}
	}
	return d
}

func writeAppendix(b *mdWriter, m *Model) {
	b.f("## Evidence appendix\n\n")
	if len(m.Evidence) == 0 {
		b.f("No evidence was consulted.\n")
		return
	}
	b.f("| Evidence | Kind | Result | What it shows | Source | Cited by |\n|---|---|---|---|---|---|\n")
	for _, e := range m.Evidence {
		src := e.Source
		if len(e.Tests) > 0 {
			src = testList(e.Tests)
		}
		b.f("| %s | %s | %s | %s | %s | %s |\n", esc(e.ID), e.Kind, e.Result, esc(shows(e)), esc(src), esc(strings.Join(e.Requirements, ", ")))
	}
}
