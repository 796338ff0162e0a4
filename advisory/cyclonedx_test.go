package advisory_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/advisory"
)

func TestParseCycloneDX(t *testing.T) {
	s, err := advisory.ParseCycloneDX(mustRead(t, sbomFile))
	if err != nil {
		t.Fatal(err)
	}
	if s.SpecVersion != "1.5" || s.ComponentCount() != 4 || s.Metadata.Component.Name != "c1-firmware" {
		t.Errorf("parsed %+v, %d components", s, s.ComponentCount())
	}
}

func TestParseCycloneDXRefuses(t *testing.T) {
	comp := func(d map[string]any, i int) map[string]any { return arr(d, "components")[i].(map[string]any) }
	tests := []struct {
		name string
		edit func(d map[string]any)
		want string
	}{
		{"format", func(d map[string]any) { d["bomFormat"] = "SPDX" }, "bomFormat"},
		{"spec version", func(d map[string]any) { d["specVersion"] = "1.1" }, "specVersion"},
		{"serial", func(d map[string]any) { d["serialNumber"] = "3e671687" }, "serialNumber"},
		{"version", func(d map[string]any) { d["version"] = 0 }, "version: must be at least 1"},
		{"type", func(d map[string]any) { comp(d, 0)["type"] = "kernel" }, "components[0].type"},
		{"no name", func(d map[string]any) { delete(comp(d, 1), "name") }, "components[1].name"},
		{"purl", func(d map[string]any) { comp(d, 1)["purl"] = "openssl@3" }, "purl"},
		{"hash", func(d map[string]any) {
			arr(comp(d, 1), "hashes")[0].(map[string]any)["content"] = "xyz"
		}, "hashes[0]"},
		{"bom-ref twice", func(d map[string]any) { comp(d, 2)["bom-ref"] = "linux" }, `"linux" is used twice`},
		{"nested type", func(d map[string]any) {
			arr(comp(d, 2), "components")[0].(map[string]any)["type"] = "?"
		}, "components[2].components[0].type"},
		{"dangling dependency", func(d map[string]any) {
			arr(d, "dependencies")[1].(map[string]any)["dependsOn"] = []any{"zlib"}
		}, `"zlib" names no component`},
		{"wrong member type", func(d map[string]any) { d["components"] = "none" }, "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := advisory.ParseCycloneDX(mutated(t, sbomFile, tt.edit))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, advisory.ErrInvalid) {
				t.Fatalf("error %v, want ErrInvalid containing %q", err, tt.want)
			}
		})
	}
	good := mustRead(t, sbomFile)
	dup := bytes.Replace(good, []byte(`"version": 1,`), []byte(`"version": 1, "version": 2,`), 1)
	if _, err := advisory.ParseCycloneDX(dup); !errors.Is(err, advisory.ErrSyntax) {
		t.Errorf("duplicate key: %v", err)
	}
	big := append(bytes.Clone(good), bytes.Repeat([]byte(" "), advisory.MaxSBOMSize)...)
	if _, err := advisory.ParseCycloneDX(big); !errors.Is(err, advisory.ErrTooLarge) {
		t.Errorf("oversized: %v", err)
	}
}
