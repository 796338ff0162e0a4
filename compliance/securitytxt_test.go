package compliance_test

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// parseSecurityTxt reads RFC 9116 fields (name → values), refusing lines
// that are neither fields nor comments.
func parseSecurityTxt(t *testing.T, b []byte) map[string][]string {
	t.Helper()
	fields := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, ": ")
		if !ok || strings.ContainsAny(name, " \t") {
			t.Fatalf("not an RFC 9116 field: %q", line)
		}
		fields[strings.ToLower(name)] = append(fields[strings.ToLower(name)], value)
	}
	return fields
}

// The served security.txt carries the profile's disclosure contact with
// the fields RFC 9116 requires (Contact, Expires, at most one Expires,
// less than a year ahead) and the optional Policy and Preferred-Languages.
func TestSecurityTxt(t *testing.T) {
	p := MustProfile(t)
	p.Disclosure.PreferredLanguages = []string{"en", "ja"}
	at := time.Date(2026, 3, 1, 17, 30, 0, 0, time.UTC)
	got := parseSecurityTxt(t, p.SecurityTxt(at))
	want := map[string][]string{
		"contact":             {"mailto:security@example.com"},
		"expires":             {"2026-08-28T00:00:00Z"},
		"policy":              {"https://example.com/security"},
		"preferred-languages": {"en, ja"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("security.txt (-want +got):\n%s", d)
	}
	expires, err := time.Parse(time.RFC3339, got["expires"][0])
	if err != nil || !expires.After(at) || expires.Sub(at) >= 365*24*time.Hour {
		t.Errorf("Expires %v is not within a year after %v", expires, at)
	}

	// An https contact is used as it is, and as the policy if none is named.
	p.Disclosure.Contact, p.Disclosure.PolicyURL, p.Disclosure.PreferredLanguages = "https://example.com/report", "", nil
	p.Product.Model = "KX-100\nContact: mailto:attacker@example.net"
	got = parseSecurityTxt(t, p.SecurityTxt(at))
	if !cmp.Equal(got["contact"], []string{"https://example.com/report"}) || !cmp.Equal(got["policy"], []string{"https://example.com/report"}) ||
		got["preferred-languages"] != nil {
		t.Fatalf("https contact: %v", got)
	}
}
