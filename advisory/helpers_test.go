package advisory_test

import (
	"encoding/json"
	"os"
	"testing"
)

const (
	csafFile = "testdata/csaf-ksa-2026-001.json"
	sbomFile = "testdata/sbom-c1-1.4.0.cdx.json"
)

func mustRead(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// obj and arr walk a decoded document in a mutation.
func obj(v any, key string) map[string]any { return v.(map[string]any)[key].(map[string]any) }
func arr(v any, key string) []any          { return v.(map[string]any)[key].([]any) }

// mutated returns the document in name after edit changed its decoded form.
func mutated(tb testing.TB, name string, edit func(doc map[string]any)) []byte {
	tb.Helper()
	var doc map[string]any
	if err := json.Unmarshal(mustRead(tb, name), &doc); err != nil {
		tb.Fatal(err)
	}
	edit(doc)
	b, err := json.Marshal(doc)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
