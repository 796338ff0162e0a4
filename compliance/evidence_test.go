package compliance_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/compliance"
)

// moduleRoot is the repository root as seen from this package's directory,
// where `go test` runs.
const moduleRoot = ".."

// testFuncs returns the Test and Fuzz functions declared in a package's
// _test.go files, whatever their build tags.
func testFuncs(t *testing.T, pkg string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(moduleRoot, pkg, "*_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	decl := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz)\w*)\(\w+ \*testing\.[TF]\)`)
	funcs := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range decl.FindAllStringSubmatch(string(b), -1) {
			funcs[m[1]] = true
		}
	}
	return funcs
}

// Every T row names test functions that exist: a renamed or deleted test
// must not leave a report citing evidence that no longer runs.
func TestEvidenceTestsExist(t *testing.T) {
	ev, err := compliance.LoadEvidence()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(moduleRoot, "go.mod")); err != nil {
		t.Fatalf("module root not at %s: %v", moduleRoot, err)
	}
	n := 0
	for _, row := range ev.Rows {
		for _, ref := range row.Tests {
			funcs := testFuncs(t, ref.Package)
			for _, name := range ref.Names {
				n++
				if !funcs[name] {
					t.Errorf("%s cites %s.%s, which does not exist", row.ID, ref.ImportPath(), name)
				}
			}
		}
	}
	if n < 50 {
		t.Errorf("only %d test references checked", n)
	}
}

func TestEvidenceKindsCarryTheirSource(t *testing.T) {
	ev, err := compliance.LoadEvidence()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ev.Rows {
		prefix := map[compliance.Kind]string{compliance.KindTest: "t-", compliance.KindFleet: "f-", compliance.KindDeclared: "d-"}[r.Kind]
		if !strings.HasPrefix(r.ID, prefix) {
			t.Errorf("%s: kind %s rows are named %s…", r.ID, r.Kind, prefix)
		}
	}
}
