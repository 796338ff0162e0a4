package compliance

import (
	"strings"
	"testing"
)

// Every fact and declared check is used by some evidence row, so a check
// cannot be written and then forgotten in the catalogue.
func TestChecksAreUsed(t *testing.T) {
	ev, err := LoadEvidence()
	if err != nil {
		t.Fatal(err)
	}
	facts, fields := map[string]bool{}, map[string]bool{}
	for _, r := range ev.Rows {
		facts[r.Fact], fields[r.Field] = true, true
	}
	for name := range factChecks {
		if !facts[name] {
			t.Errorf("fact check %q is used by no evidence row", name)
		}
	}
	for name := range declaredChecks {
		if !fields[name] {
			t.Errorf("declared check %q is used by no evidence row", name)
		}
	}
}

func TestEvidenceDefValidate(t *testing.T) {
	tests := []struct {
		name string
		def  EvidenceDef
		want string
	}{
		{"T without tests", EvidenceDef{Kind: KindTest}, "exactly its own source"},
		{"T with fact", EvidenceDef{Kind: KindTest, Tests: []TestRef{{Package: ".", Names: []string{"TestX"}}}, Fact: "devices"}, "exactly its own source"},
		{"T ref without names", EvidenceDef{Kind: KindTest, Tests: []TestRef{{Package: "."}}}, "without package or names"},
		{"F unknown fact", EvidenceDef{Kind: KindFleet, Fact: "weather"}, "no check for fact"},
		{"D unknown field", EvidenceDef{Kind: KindDeclared, Field: "colour"}, "no check for profile field"},
		{"D with tests", EvidenceDef{Kind: KindDeclared, Field: "model", Tests: []TestRef{{Package: ".", Names: []string{"TestX"}}}}, "exactly its own source"},
		{"unknown kind", EvidenceDef{Kind: "X"}, "not T, F or D"},
	}
	for _, tt := range tests {
		err := tt.def.validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
	ok := EvidenceDef{Kind: KindFleet, Fact: "devices"}
	if err := ok.validate(); err != nil {
		t.Errorf("valid row refused: %v", err)
	}
}
