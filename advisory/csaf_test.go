package advisory_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/koshin-ota/koshin/advisory"
)

func TestParseCSAF(t *testing.T) {
	c, err := advisory.ParseCSAF(mustRead(t, csafFile))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.CVEs(), []string{"CVE-2026-1234", "CVE-2026-1235"}; !cmp.Equal(got, want) {
		t.Errorf("CVEs = %v, want %v", got, want)
	}
	got := c.Summarize()
	want := advisory.Summary{
		ID: "KSA-2026-001", Title: "Example Camera firmware 1.4.0 fixes remote code execution in the web server",
		Severity: "HIGH", MaxScore: 8.8, Publisher: "Example Devices Ltd", Released: "2026-04-10T09:00:00Z",
		Description: "Firmware 1.4.0 closes a flaw that let an attacker on the local network run code on the camera, and a denial of service in the update client.",
		Vulnerabilities: []advisory.VulnerabilityNote{
			{CVE: "CVE-2026-1234", Title: "Stack overflow in the web server's header parser", Severity: "HIGH", Score: 8.8, Fix: "Install firmware 1.4.0."},
			{CVE: "CVE-2026-1235", Title: "Unbounded download in the update client", Severity: "HIGH", Score: 7.5, Fix: "Install firmware 1.4.0."},
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("summary (-want +got):\n%s", d)
	}
	text := got.Text()
	for _, s := range []string{"Security update KSA-2026-001", "(severity high)", "CVE-2026-1234: Stack overflow", "(high, CVSS 8.8)"} {
		if !strings.Contains(text, s) {
			t.Errorf("text lacks %q:\n%s", s, text)
		}
	}
}

// Each mutation breaks one rule; the error names the place.
func TestParseCSAFRefuses(t *testing.T) {
	vuln := func(d map[string]any, i int) map[string]any { return arr(d, "vulnerabilities")[i].(map[string]any) }
	tests := []struct {
		name string
		edit func(d map[string]any)
		want string
	}{
		{"version", func(d map[string]any) { obj(d, "document")["csaf_version"] = "2.1" }, "csaf_version"},
		{"category", func(d map[string]any) { obj(d, "document")["category"] = "csaf_base" }, "document.category"},
		{"no title", func(d map[string]any) { delete(obj(d, "document"), "title") }, "document.title: required"},
		{"control chars", func(d map[string]any) { obj(d, "document")["title"] = "bell\a" }, "control characters"},
		{"publisher category", func(d map[string]any) { obj(obj(d, "document"), "publisher")["category"] = "anyone" }, "publisher.category"},
		{"publisher namespace", func(d map[string]any) { obj(obj(d, "document"), "publisher")["namespace"] = "devices.example.com" }, "publisher.namespace"},
		{"draft", func(d map[string]any) { obj(obj(d, "document"), "tracking")["status"] = "draft" }, "draft advisory"},
		{"tracking id", func(d map[string]any) { obj(obj(d, "document"), "tracking")["id"] = "KSA 2026/001" }, "tracking.id"},
		{"dates", func(d map[string]any) {
			obj(obj(d, "document"), "tracking")["current_release_date"] = "2026-03-01T00:00:00Z"
		}, "before initial_release_date"},
		{"bad date", func(d map[string]any) { obj(obj(d, "document"), "tracking")["initial_release_date"] = "1 April" }, "RFC 3339"},
		{"no history", func(d map[string]any) { obj(obj(d, "document"), "tracking")["revision_history"] = []any{} }, "revision_history"},
		{"unknown member", func(d map[string]any) { obj(d, "document")["colour"] = "red" }, "unknown field"},
		{"no vulnerabilities", func(d map[string]any) { delete(d, "vulnerabilities") }, "vulnerabilities: needs"},
		{"bad CVE", func(d map[string]any) { vuln(d, 0)["cve"] = "CVE-26-1" }, "not a CVE ID"},
		{"CVE twice", func(d map[string]any) { vuln(d, 1)["cve"] = "CVE-2026-1234" }, "listed twice"},
		{"no id at all", func(d map[string]any) { delete(vuln(d, 0), "cve") }, "needs a cve or ids"},
		{"no status", func(d map[string]any) { delete(vuln(d, 0), "product_status") }, "product_status: required"},
		{"undefined product", func(d map[string]any) {
			obj(vuln(d, 0), "product_status")["fixed"] = []any{"C1-9.9"}
		}, `product "C1-9.9" is not defined`},
		{"contradiction", func(d map[string]any) {
			obj(vuln(d, 0), "product_status")["fixed"] = []any{"C1-1.3.2"}
		}, "both affected and fixed"},
		{"remediation without products", func(d map[string]any) {
			delete(arr(vuln(d, 0), "remediations")[0].(map[string]any), "product_ids")
		}, "6.1.29"},
		{"remediation category", func(d map[string]any) {
			arr(vuln(d, 0), "remediations")[0].(map[string]any)["category"] = "reboot"
		}, "remediations[0].category"},
		{"undefined group", func(d map[string]any) {
			arr(vuln(d, 0), "threats")[0].(map[string]any)["group_ids"] = []any{"NONE"}
		}, `group "NONE"`},
		{"severity mismatch", func(d map[string]any) {
			obj(arr(vuln(d, 0), "scores")[0], "cvss_v3")["baseSeverity"] = "LOW"
		}, "does not match base score 8.8"},
		{"score range", func(d map[string]any) {
			obj(arr(vuln(d, 0), "scores")[0], "cvss_v3")["baseScore"] = 11
		}, "baseScore"},
		{"vector", func(d map[string]any) {
			obj(arr(vuln(d, 0), "scores")[0], "cvss_v3")["vectorString"] = "AV:N"
		}, "vectorString"},
		{"product defined twice", func(d map[string]any) {
			obj(d, "product_tree")["full_product_names"] = []any{map[string]any{"name": "again", "product_id": "C1-1.4.0"}}
		}, "defined twice"},
		{"branch without product", func(d map[string]any) {
			arr(obj(d, "product_tree"), "branches")[0].(map[string]any)["branches"] = []any{}
		}, "either sub-branches or a product"},
		{"small group", func(d map[string]any) {
			arr(obj(d, "product_tree"), "product_groups")[0].(map[string]any)["product_ids"] = []any{"C1-1.3.2"}
		}, "at least two products"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := advisory.ParseCSAF(mutated(t, csafFile, tt.edit))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if !errors.Is(err, advisory.ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
		})
	}
}

func TestParseCSAFSyntax(t *testing.T) {
	good := mustRead(t, csafFile)
	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"duplicate key", bytes.Replace(good, []byte(`"lang": "en",`), []byte(`"lang": "en", "lang": "de",`), 1), advisory.ErrSyntax},
		{"trailing data", append(bytes.Clone(good), []byte(`{}`)...), advisory.ErrSyntax},
		{"truncated", good[:len(good)/2], advisory.ErrSyntax},
		{"too deep", []byte(deep), advisory.ErrSyntax},
		{"empty", nil, advisory.ErrSyntax},
		{"not an object", []byte(`[1, 2]`), advisory.ErrInvalid},
		{"too large", append(bytes.Clone(good), bytes.Repeat([]byte(" "), advisory.MaxCSAFSize)...), advisory.ErrTooLarge},
	}
	for _, tt := range tests {
		if _, err := advisory.ParseCSAF(tt.in); !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.want)
		}
	}
	// White space after the document is fine.
	if _, err := advisory.ParseCSAF(append(bytes.Clone(good), "\n\n"...)); err != nil {
		t.Errorf("trailing newline refused: %v", err)
	}
}

func TestVerifyCSAF(t *testing.T) {
	b := mustRead(t, csafFile)
	sum := advisory.Digest(b)
	if _, err := advisory.VerifyCSAF(b, sum); err != nil {
		t.Fatal(err)
	}
	forged := bytes.Replace(b, []byte(`"baseScore": 8.8, "baseSeverity": "HIGH"`), []byte(`"baseScore": 9.8, "baseSeverity": "CRITICAL"`), 1)
	if _, err := advisory.VerifyCSAF(forged, sum); !errors.Is(err, advisory.ErrDigest) {
		t.Errorf("forged severity: %v, want ErrDigest", err)
	}
	if _, err := advisory.VerifyCSAF(b, ""); !errors.Is(err, advisory.ErrDigest) {
		t.Errorf("no signed digest: %v, want ErrDigest", err)
	}
	if _, err := advisory.VerifyCSAF(b, strings.ToUpper(sum)); err != nil {
		t.Errorf("upper-case hex refused: %v", err)
	}
}
