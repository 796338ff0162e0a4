package compliance_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/compliance"
)

func mustCatalogue(tb testing.TB, std compliance.Standard, edition string) *compliance.Catalogue {
	tb.Helper()
	c, err := compliance.LoadCatalogue(std, edition)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestCatalogueSizes(t *testing.T) {
	for _, tc := range []struct {
		std     compliance.Standard
		edition string
		n       int
	}{
		{compliance.EN303645, "", 68},
		{compliance.EN303645, compliance.EditionV313, 71},
		{compliance.CCDS, "", 77},
		{compliance.OTA, "", 40},
		{compliance.JCSTAR, "", 16},
		{compliance.PSTI, "", 3},
	} {
		if got := len(mustCatalogue(t, tc.std, tc.edition).IDs()); got != tc.n {
			t.Errorf("%s %s: %d requirements, want %d", tc.std, tc.edition, got, tc.n)
		}
	}
	if _, err := compliance.LoadCatalogue(compliance.CCDS, compliance.EditionV313); err == nil {
		t.Error("CCDS accepted an EN 303 645 edition")
	}
}

// OTA items 1–40, all present, recommended exactly where the framework
// marks ○ (seeds/ota-iot-trust-framework-v2.5-ja.txt).
func TestOTAItems(t *testing.T) {
	c := mustCatalogue(t, compliance.OTA, "")
	recommended := []int{11, 32, 33, 35, 36, 37, 38}
	for i := 1; i <= 40; i++ {
		r, ok := c.Requirement(fmt.Sprint(i))
		if !ok {
			t.Fatalf("item %d missing", i)
		}
		want := "required"
		if slices.Contains(recommended, i) {
			want = "recommended"
		}
		if r.Status != want {
			t.Errorf("item %d: %s, want %s", i, r.Status, want)
		}
	}
}

// JC-STAR: 16 IDs; texts only where our sources give them, never invented.
func TestJCSTARWording(t *testing.T) {
	c := mustCatalogue(t, compliance.JCSTAR, "")
	for i := 1; i <= 16; i++ {
		id := fmt.Sprintf("S1.1-%02d", i)
		r, ok := c.Requirement(id)
		if !ok {
			t.Fatalf("%s missing", id)
		}
		if published := i <= 5; r.Unpublished == published || (r.DisplayText() == compliance.TextNotPublished) == published {
			t.Errorf("%s: unpublished=%v text=%q", id, r.Unpublished, r.DisplayText())
		}
		if r.Unpublished && len(r.Evidence) > 0 {
			t.Errorf("%s: evidence mapped to a requirement whose wording is unknown", id)
		}
	}
}

func TestPSTIRefs(t *testing.T) {
	c := mustCatalogue(t, compliance.PSTI, "")
	en := mustCatalogue(t, compliance.EN303645, "")
	var refs []string
	for _, id := range c.IDs() {
		r, _ := c.Requirement(id)
		refs = append(refs, r.Refs...)
		if !r.Mandatory() {
			t.Errorf("%s is not mandatory", id)
		}
	}
	if want := []string{"5.1-1", "5.1-2", "5.2-1", "5.3-13"}; !slices.Equal(refs, want) {
		t.Fatalf("PSTI refs %v, want %v", refs, want)
	}
	for _, id := range refs {
		if _, ok := en.Requirement(id); !ok {
			t.Errorf("ref %s not in EN 303 645", id)
		}
	}
}

// V3.1.3 differs from V2.1.1 only as our sources state; the rest is marked
// identical and split parts inherit the parent's status and evidence.
func TestV313Delta(t *testing.T) {
	v2 := mustCatalogue(t, compliance.EN303645, "")
	v3 := mustCatalogue(t, compliance.EN303645, compliance.EditionV313)
	added := map[string]string{"5.0-1": "", "5.3-4A": "5.3-4", "5.3-4B": "5.3-4", "5.3-6A": "5.3-6", "5.3-6B": "5.3-6"}
	for _, id := range v3.IDs() {
		r, _ := v3.Requirement(id)
		parent, isNew := added[id]
		switch {
		case id == "5.0-1":
			if !r.Unpublished || r.Label() != "—" || !strings.Contains(r.Change, "added") {
				t.Errorf("5.0-1: %+v", r)
			}
		case isNew:
			p, _ := v2.Requirement(parent)
			if r.Label() != p.Label() || !slices.Equal(r.Evidence, p.Evidence) || !strings.Contains(r.Change, "split from V2.1.1 "+parent) {
				t.Errorf("%s does not inherit %s: %+v", id, parent, r)
			}
		default:
			p, ok := v2.Requirement(id)
			if !ok || r.Label() != p.Label() || r.Change != "identical to V2.1.1" {
				t.Errorf("%s: not marked identical to V2.1.1", id)
			}
		}
	}
	if ids := v3.IDs(); ids[1] != "5.0-1" || slices.Contains(ids, "5.3-4") || slices.Contains(ids, "5.3-6") {
		t.Errorf("V3.1.3 order or splits wrong: %v", ids[:4])
	}
}

func TestEveryEvidenceIDExistsAndIsCited(t *testing.T) {
	ev, err := compliance.LoadEvidence()
	if err != nil {
		t.Fatal(err)
	}
	cited := map[string]bool{}
	for _, std := range compliance.Standards {
		c := mustCatalogue(t, std, "")
		for _, id := range c.IDs() {
			r, _ := c.Requirement(id)
			for _, e := range r.Evidence {
				if _, ok := ev.Row(e); !ok {
					t.Errorf("%s %s cites unknown evidence %s", std, id, e)
				}
				cited[e] = true
			}
		}
	}
	for _, r := range ev.Rows {
		if !cited[r.ID] {
			t.Errorf("evidence %s is cited by no requirement", r.ID)
		}
	}
}

// implementedByKoshin are the EN 303 645 provisions the update system and
// agent implement; their answers must rest on tests or fleet observation,
// never on the manufacturer's word alone. 5.3-14 and 5.3-15 are excluded:
// they apply only to devices without an update mechanism.
var implementedByKoshin = []string{
	"5.1-1", "5.1-2", "5.1-3", "5.1-4", "5.1-5",
	"5.3-1", "5.3-2", "5.3-3", "5.3-4", "5.3-5", "5.3-6", "5.3-7", "5.3-8", "5.3-9", "5.3-10",
	"5.3-11", "5.3-12", "5.3-13", "5.3-16",
	"5.4-1", "5.4-2", "5.4-3", "5.4-4",
	"5.5-1", "5.5-2", "5.5-3", "5.5-4", "5.5-5", "5.5-6", "5.5-7", "5.5-8",
	"5.6-1", "5.6-2", "5.7-2", "5.9-1", "5.9-2", "5.9-3", "5.10-1", "5.11-1", "5.13-1",
}

func TestImplementedProvisionsHaveTestOrFleetEvidence(t *testing.T) {
	ev, err := compliance.LoadEvidence()
	if err != nil {
		t.Fatal(err)
	}
	c := mustCatalogue(t, compliance.EN303645, "")
	for _, id := range implementedByKoshin {
		r, ok := c.Requirement(id)
		if !ok {
			t.Fatalf("no provision %s", id)
		}
		hasTF := slices.ContainsFunc(r.Evidence, func(e string) bool {
			row, _ := ev.Row(e)
			return row.Kind == compliance.KindTest || row.Kind == compliance.KindFleet
		})
		if !hasTF {
			t.Errorf("%s rests on declarations only (evidence %v); it needs a T or F row", id, r.Evidence)
		}
	}
}

func TestLabels(t *testing.T) {
	en := mustCatalogue(t, compliance.EN303645, "")
	ccds := mustCatalogue(t, compliance.CCDS, "")
	for _, tc := range []struct {
		c      *compliance.Catalogue
		id     string
		want   string
		mandat bool
	}{
		{en, "5.1-1", "M C(1)", true},
		{en, "5.3-6", "R C(9,12)", false},
		{en, "5.3-10", "M C(11,12)", true},
		{en, "5.1-3", "M", true},
		{en, "5.6-8", "R", false},
		{ccds, "UPE10", "C", false},
	} {
		r, _ := tc.c.Requirement(tc.id)
		if r.Label() != tc.want || r.Mandatory() != tc.mandat {
			t.Errorf("%s: label %q mandatory %v, want %q %v", tc.id, r.Label(), r.Mandatory(), tc.want, tc.mandat)
		}
	}
}
