package compliance_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/koshin-ota/koshin/compliance"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

// Reports for the test profile and fleet are byte-for-byte stable: any
// change to an answer, a text or the JSON field names shows up as a diff
// to review (go test ./compliance -update rewrites them).
func TestGoldenReports(t *testing.T) {
	p, facts := MustProfile(t), MustFleet(t)
	for _, std := range compliance.Standards {
		m := MustReport(t, std, p, facts)
		for _, f := range []compliance.Format{compliance.FormatMarkdown, compliance.FormatHTML, compliance.FormatJSON} {
			var buf bytes.Buffer
			if err := compliance.Render(&buf, m, f); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "golden", string(std)+"."+string(f)), buf.Bytes())
		}
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; run with -update if intended):\n%s", path, diff)
	}
}

// The JSON form decodes back into the same model: no field is lost or
// renamed between writing and reading.
func TestJSONRoundTrip(t *testing.T) {
	m := MustReport(t, compliance.EN303645, MustProfile(t), MustFleet(t))
	var buf bytes.Buffer
	if err := compliance.Render(&buf, m, compliance.FormatJSON); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	var back compliance.Model
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*m, back, cmp.AllowUnexported(compliance.EvidenceResult{}), cmp.FilterPath(func(p cmp.Path) bool {
		return p.Last().String() == ".flag"
	}, cmp.Ignore())); diff != "" {
		t.Errorf("JSON round trip (-report +decoded):\n%s", diff)
	}
	for _, key := range []string{`"schema": "koshin.compliance.report/v1"`, `"evidence_kinds"`, `"support": "N/A"`, `"observed_at"`} {
		if !strings.Contains(buf.String(), key) && !strings.Contains(mustJSON(t, m), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}

func mustJSON(t *testing.T, m *compliance.Model) string {
	var buf bytes.Buffer
	if err := compliance.Render(&buf, m, compliance.FormatJSON); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// Profile text is data, never markup: hostile values are escaped in HTML
// and cannot break the Markdown table.
func TestRenderEscapes(t *testing.T) {
	p := MustProfile(t)
	p.Product.Model = `<script>alert(1)</script> | *x*`
	p.Statements["en303645"]["5.6-9"] = "a | b\nc [link](javascript:x) <img src=x>"
	m := MustReport(t, compliance.EN303645, p, nil)

	var html bytes.Buffer
	if err := compliance.Render(&html, m, compliance.FormatHTML); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html.String(), "<script>") || strings.Contains(html.String(), "<img") {
		t.Error("HTML report contains unescaped markup from the profile")
	}
	var md bytes.Buffer
	if err := compliance.Render(&md, m, compliance.FormatMarkdown); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(md.String(), "\n") {
		if strings.HasPrefix(line, "| 5.6-9 |") {
			if n := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|"); n != 6 {
				t.Errorf("5.6-9 row has %d cell separators, want 6: %s", n, line)
			}
			if strings.Contains(line, "<img") || strings.Contains(strings.ReplaceAll(line, `\]`, ""), "](") {
				t.Errorf("Markdown row keeps markup: %s", line)
			}
		}
	}
	if strings.Contains(md.String(), "<script>") {
		t.Error("Markdown report contains unescaped markup")
	}
}

func TestPSTIDraft(t *testing.T) {
	p, facts := MustProfile(t), MustFleet(t)
	var buf bytes.Buffer
	if err := compliance.Render(&buf, MustReport(t, compliance.PSTI, p, facts), compliance.FormatMarkdown); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Statement of compliance — DRAFT", "KX-100 smart thermostat", "Example Devices Ltd",
		"until **2031-12-31**", "The manufacturer states", "[name], [function]"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("PSTI draft lacks %q", want)
		}
	}
	p.SupportPeriod.End = "2026-01-31" // ended before the report's date
	buf.Reset()
	if err := compliance.Render(&buf, MustReport(t, compliance.PSTI, p, facts), compliance.FormatMarkdown); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "Not ready to sign") {
		t.Error("a draft with unmet requirements must say it is not ready to sign")
	}
}

func TestParseFormatAndStandard(t *testing.T) {
	if _, err := compliance.ParseFormat("pdf"); err == nil {
		t.Error("pdf accepted")
	}
	if _, err := compliance.ParseStandard("en303645"); err != nil {
		t.Error(err)
	}
	if _, err := compliance.ParseStandard("EN303645"); err == nil {
		t.Error("standard names are case-sensitive identifiers")
	}
}
