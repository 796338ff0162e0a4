package advisory_test

import (
	"encoding/json"
	"testing"

	"github.com/koshin-ota/koshin/advisory"
)

// FuzzParseCSAF: no input panics the parser, and whatever it accepts
// re-encodes to a document it accepts again, with the same summary.
func FuzzParseCSAF(f *testing.F) {
	f.Add(mustRead(f, csafFile))
	f.Add([]byte(`{"document":{"category":"csaf_vex","csaf_version":"2.0"},"vulnerabilities":[{}]}`))
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := advisory.ParseCSAF(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("accepted advisory does not encode: %v", err)
		}
		c2, err := advisory.ParseCSAF(out)
		if err != nil {
			t.Fatalf("re-encoded advisory refused: %v\n%s", err, out)
		}
		if s1, s2 := c.Summarize().Text(), c2.Summarize().Text(); s1 != s2 {
			t.Fatalf("summary changed in the round trip:\n%s\n%s", s1, s2)
		}
	})
}

// FuzzParseCycloneDX: no input panics the parser, and whatever it accepts
// re-encodes to a document it accepts again.
func FuzzParseCycloneDX(f *testing.F) {
	f.Add(mustRead(f, sbomFile))
	f.Add([]byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"library","name":"x","components":[{}]}]}`))
	f.Add([]byte(`{"bomFormat":"CycloneDX","specVersion":"1.4","dependencies":[{"ref":"a"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := advisory.ParseCycloneDX(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("accepted SBOM does not encode: %v", err)
		}
		s2, err := advisory.ParseCycloneDX(out)
		if err != nil {
			t.Fatalf("re-encoded SBOM refused: %v\n%s", err, out)
		}
		if s.ComponentCount() != s2.ComponentCount() {
			t.Fatal("component count changed in the round trip")
		}
	})
}
