package compliance_test

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/compliance"
)

// The team's requirements catalogue and the source documents live next to
// the repository (../shared relative to its root), not in it.
const (
	requirementsMD = "../../shared/requirements.md"
	seedEN         = "../../shared/seeds/etsi-en-303-645-v2.1.1-ja-en.txt"
	seedOTA        = "../../shared/seeds/ota-iot-trust-framework-v2.5-ja.txt"
)

func readSource(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		t.Skipf("%s not present (it lives outside the repository); skipping the cross-check", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// status is an ID's status or level and its conditions, as "M C(1)".
type statusMap map[string]string

var (
	mdCCDS = regexp.MustCompile(`(?m)^\| ([A-Z]{3}\d{2}) \| ([ABC]) \|`)
	mdEN   = regexp.MustCompile(`(?m)^\| (\d+(?:\.\d+)?-\d+) \| ([MR])(?: C)? ?(?:\(([\d, ]+)\))? \|`)
	mdOTA  = regexp.MustCompile(`(?m)^\| (\d+) \| ([●○]) \|`)
	mdEN41 = regexp.MustCompile(`Provision 4-1 \(([MR])\)`)
)

// label renders a status the way Requirement.Label does.
func label(level, conds string) string {
	if conds == "" {
		return level
	}
	var nums []string
	for _, n := range strings.Split(conds, ",") {
		nums = append(nums, strings.TrimSpace(n))
	}
	return level + " C(" + strings.Join(nums, ",") + ")"
}

func catalogueLabels(t *testing.T, std compliance.Standard) statusMap {
	c := mustCatalogue(t, std, "")
	out := statusMap{}
	for _, id := range c.IDs() {
		r, _ := c.Requirement(id)
		out[id] = r.Label()
	}
	return out
}

func compareBothWays(t *testing.T, what string, want, got statusMap) {
	t.Helper()
	for id, w := range want {
		if g, ok := got[id]; !ok {
			t.Errorf("%s: %s is in the source but not in the catalogue", what, id)
		} else if g != w {
			t.Errorf("%s: %s has %q in the catalogue, %q in the source", what, id, g, w)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("%s: %s is in the catalogue but not in the source", what, id)
		}
	}
}

func TestCatalogueMatchesRequirementsMD(t *testing.T) {
	md := readSource(t, requirementsMD)
	ccds := statusMap{}
	for _, m := range mdCCDS.FindAllStringSubmatch(md, -1) {
		ccds[m[1]] = m[2]
	}
	compareBothWays(t, "CCDS", ccds, catalogueLabels(t, compliance.CCDS))

	en := statusMap{}
	for _, m := range mdEN.FindAllStringSubmatch(md, -1) {
		en[m[1]] = label(m[2], m[3])
	}
	if m := mdEN41.FindStringSubmatch(md); m != nil {
		en["4-1"] = m[1]
	}
	compareBothWays(t, "EN 303 645", en, catalogueLabels(t, compliance.EN303645))

	// requirements.md lists only the OTA items relevant to updates.
	ota := catalogueLabels(t, compliance.OTA)
	for _, m := range mdOTA.FindAllStringSubmatch(md, -1) {
		want := map[string]string{"●": "required", "○": "recommended"}[m[2]]
		if ota[m[1]] != want {
			t.Errorf("OTA item %s: %q in the catalogue, %q in requirements.md", m[1], ota[m[1]], want)
		}
	}
	if !strings.Contains(md, "S1.1-01…16") || len(mustCatalogue(t, compliance.JCSTAR, "").IDs()) != 16 {
		t.Error("JC-STAR ★1 is not S1.1-01…16 in both")
	}
	psti := regexp.MustCompile(`PSTI regulations rely on ([^\n]*?)\.\n`).FindStringSubmatch(md)
	if psti == nil {
		t.Fatal("requirements.md no longer says which provisions PSTI relies on")
	}
	var refs []string
	c := mustCatalogue(t, compliance.PSTI, "")
	for _, id := range c.IDs() {
		r, _ := c.Requirement(id)
		refs = append(refs, r.Refs...)
	}
	if want := regexp.MustCompile(`\d+\.\d+-\d+`).FindAllString(psti[1], -1); !slices.Equal(refs, want) {
		t.Errorf("PSTI refers to %v; requirements.md says %v", refs, want)
	}
}

var seedB1 = regexp.MustCompile(`(?m)^Provision (\d+\.\d+(?:-\d+)?)\t([MR])(?: C)? ?(?:\(([\d, ]+)\))?\t`)

// Annex B table B.1 of the standard itself; it spells clause 6 as "6.1".
func TestCatalogueMatchesENTableB1(t *testing.T) {
	seed := readSource(t, seedEN)
	want := statusMap{"4-1": "M"} // clause 4, not in table B.1
	for _, m := range seedB1.FindAllStringSubmatch(seed, -1) {
		id := m[1]
		if strings.HasPrefix(id, "6.") {
			id = "6-" + strings.TrimPrefix(id, "6.")
		}
		want[id] = label(m[2], m[3])
	}
	compareBothWays(t, "table B.1", want, catalogueLabels(t, compliance.EN303645))
}

var seedOTAItem = regexp.MustCompile(`(?m)^(?:<p>)?(\d+)\. .*?\t?([●○])\s*$`)

// The framework's own ●/○ markers. The source numbers two items "18"; the
// items are therefore taken in order.
func TestCatalogueMatchesOTAFramework(t *testing.T) {
	seed := readSource(t, seedOTA)
	got := catalogueLabels(t, compliance.OTA)
	items := seedOTAItem.FindAllStringSubmatch(seed, -1)
	if len(items) != 40 {
		t.Fatalf("found %d items in the framework, want 40", len(items))
	}
	for i, m := range items {
		want := map[string]string{"●": "required", "○": "recommended"}[m[2]]
		if id := strconv.Itoa(i + 1); got[id] != want {
			t.Errorf("item %s (numbered %s in the source): %q, want %q", id, m[1], got[id], want)
		}
	}
}

var (
	seedProvision = regexp.MustCompile(`(?m)^\*\*Provision (\S+)\*\* (.+)$`)
	wordRE        = regexp.MustCompile(`[a-z0-9]+`)
)

// shingles returns every run of n consecutive words.
func shingles(s string, n int) []string {
	w := wordRE.FindAllString(strings.ToLower(s), -1)
	var out []string
	for i := 0; i+n <= len(w); i++ {
		out = append(out, strings.Join(w[i:i+n], " "))
	}
	return out
}

// The catalogue paraphrases; it must not reproduce the standard's prose.
// No six consecutive words of a provision's text may reappear.
func TestENTextsAreOwnWords(t *testing.T) {
	seed := readSource(t, seedEN)
	c := mustCatalogue(t, compliance.EN303645, "")
	for _, m := range seedProvision.FindAllStringSubmatch(seed, -1) {
		r, ok := c.Requirement(m[1])
		if !ok {
			continue
		}
		original := shingles(m[2], 6)
		for _, s := range shingles(r.Text, 6) {
			if slices.Contains(original, s) {
				t.Errorf("%s repeats the standard's words %q; rephrase it", r.ID, s)
			}
		}
	}
}
