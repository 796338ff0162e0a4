package grub_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/koshin-ota/koshin/agent/grub"
)

// testdata/grubenv-editenv was made by grub-editenv (commands in
// testdata/README); replaying the same edits must give the same bytes.
func TestGoldenGrubEditenv(t *testing.T) {
	want, err := os.ReadFile("testdata/grubenv-editenv")
	if err != nil {
		t.Fatal(err)
	}
	e := grub.Create(filepath.Join(t.TempDir(), "grubenv"))
	mustSet(t, e, "koshin_order", "B A", "A_OK", "1", "path", `C:\boot\x`, "note", "two\nlines", "hash", "#=x")
	mustSet(t, e, "A_OK", "0", "koshin_order", "A")
	if err := e.Delete("hash"); err != nil {
		t.Fatal(err)
	}
	mustSet(t, e, "B_TRY", "2")
	if got := e.Bytes(); !bytes.Equal(got, want) {
		t.Fatalf("koshin\n%q\ngrub-editenv\n%q", got, want)
	}
	vars, err := grub.Decode(want)
	if err != nil {
		t.Fatal(err)
	}
	wantVars := []grub.Var{{"koshin_order", "A"}, {"A_OK", "0"}, {"path", `C:\boot\x`}, {"note", "two\nlines"}, {"B_TRY", "2"}}
	if !slices.Equal(vars, wantVars) {
		t.Fatalf("decoded %q, want %q", vars, wantVars)
	}
}
