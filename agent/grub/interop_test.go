package grub_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/agent/grub"
)

// These tests cross-check koshin against grub-editenv and grub-script-check
// (Debian grub-common).

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	if os.Getenv("KOSHIN_INTEGRATION") != "1" {
		t.Skip("interop test: set KOSHIN_INTEGRATION=1 to run against grub-editenv (grub-common)")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("interop test: %s not on PATH (Debian: apt-get install grub-common)", tool)
		}
	}
}

func editenv(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("grub-editenv", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("grub-editenv %q: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

var specialVars = []grub.Var{
	{"koshin_order", "B A"},
	{"backslash", `C:\boot\`},
	{"newlines", "one\ntwo\n"},
	{"hash", "#=#"},
	{"spaces", "  x  "},
	{"quotes", `"'$x`},
	{"empty", ""},
	{"utf8", "ステータス"},
}

func setArgs(vars []grub.Var) []string {
	var args []string
	for _, v := range vars {
		args = append(args, v.Name+"="+v.Value)
	}
	return args
}

// listing is what grub-editenv list prints for vars.
func listing(vars []grub.Var) string {
	var b strings.Builder
	for _, v := range vars {
		b.WriteString(v.Name + "=" + v.Value + "\n")
	}
	return b.String()
}

// A block made by grub-editenv create + set is read by koshin.
func TestInteropEditenvToKoshin(t *testing.T) {
	needTools(t, "grub-editenv")
	path := filepath.Join(t.TempDir(), "grubenv")
	editenv(t, path, "create")
	editenv(t, append([]string{path, "set"}, setArgs(specialVars)...)...)
	e, err := grub.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.All(); !slices.Equal(got, specialVars) {
		t.Fatalf("koshin read %q, want %q", got, specialVars)
	}
}

// A block written by koshin is listed correctly by grub-editenv.
func TestInteropKoshinToEditenv(t *testing.T) {
	needTools(t, "grub-editenv")
	path := filepath.Join(t.TempDir(), "grubenv")
	e := grub.Create(path)
	for _, v := range specialVars {
		mustSet(t, e, v.Name, v.Value)
	}
	if err := e.Save(); err != nil {
		t.Fatal(err)
	}
	if got, want := editenv(t, path, "list"), listing(specialVars); got != want {
		t.Fatalf("grub-editenv list:\n%q\nwant\n%q", got, want)
	}
}

// The same edits made by grub-editenv and by koshin give the same bytes after
// every step, including in-place growth and shrinking, unset and a full block.
func TestInteropSameBytes(t *testing.T) {
	needTools(t, "grub-editenv")
	dir := t.TempDir()
	tool, ours := filepath.Join(dir, "tool"), filepath.Join(dir, "ours")
	editenv(t, tool, "create")
	e := grub.Create(ours)
	steps := [][]string{
		setArgs(specialVars),
		{"backslash=shorter", "newlines=\n\n\n\\\\\n", "koshin_order=A"},
		{"unset", "hash", "empty"},
		{"new=1", "hash=again"},
		{"unset", "koshin_order"},
		{"big=" + strings.Repeat("x", 700)},
		{"big=" + strings.Repeat("y\n", 10)},
	}
	for i, step := range steps {
		if step[0] == "unset" {
			editenv(t, append([]string{tool, "unset"}, step[1:]...)...)
			for _, name := range step[1:] {
				if err := e.Delete(name); err != nil {
					t.Fatal(err)
				}
			}
		} else {
			editenv(t, append([]string{tool, "set"}, step...)...)
			for _, arg := range step {
				name, value, _ := strings.Cut(arg, "=")
				mustSet(t, e, name, value)
			}
		}
		if err := e.Save(); err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(tool)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(ours); !bytes.Equal(got, want) {
			t.Fatalf("step %d: koshin\n%q\ngrub-editenv\n%q", i, got, want)
		}
	}
}

// Both refuse a value that does not fit, leaving the block unchanged.
func TestInteropBothRefuseOverflow(t *testing.T) {
	needTools(t, "grub-editenv")
	path := filepath.Join(t.TempDir(), "grubenv")
	editenv(t, path, "create")
	editenv(t, path, "set", "a="+strings.Repeat("x", 800))
	before, _ := os.ReadFile(path)
	big := "b=" + strings.Repeat("y", 200)
	if err := exec.Command("grub-editenv", path, "set", big).Run(); err == nil {
		t.Fatal("grub-editenv accepted an overflowing value")
	}
	e, err := grub.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	name, value, _ := strings.Cut(big, "=")
	if err := e.Set(name, value); !errors.Is(err, grub.ErrTooLarge) {
		t.Fatalf("koshin: err %v, want ErrTooLarge", err)
	}
	if err := e.Save(); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Fatal("block changed")
	}
}

// koshin edits a block created by grub-editenv; grub-editenv reads the result.
func TestInteropEditOtherToolsBlock(t *testing.T) {
	needTools(t, "grub-editenv")
	path := filepath.Join(t.TempDir(), "grubenv")
	editenv(t, path, "create")
	editenv(t, path, "set", "A_OK=1", "A_TRY=0")
	e, err := grub.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ArmTrial("B", "A"); err != nil {
		t.Fatal(err)
	}
	if err := e.Save(); err != nil {
		t.Fatal(err)
	}
	want := "A_OK=1\nA_TRY=0\nB_OK=1\nB_TRY=1\nkoshin_order=B A\n"
	if got := editenv(t, path, "list"); got != want {
		t.Fatalf("grub-editenv list:\n%s\nwant\n%s", got, want)
	}
}

// The documented grub.cfg snippet is valid GRUB script and uses the names
// the Go helpers write.
func TestInteropGrubScript(t *testing.T) {
	needTools(t, "grub-script-check")
	cmd := exec.Command("grub-script-check", "testdata/koshin-ab.cfg")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("grub-script-check: %v\n%s", err, out)
	}
	cfg, err := os.ReadFile("testdata/koshin-ab.cfg")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{grub.VarOrder, grub.OKVar("A"), grub.TryVar("B"), `"$try" = "` + grub.TryTaken + `"`, `"$try" = "` + grub.TryArmed + `"`} {
		if !bytes.Contains(cfg, []byte(name)) {
			t.Errorf("koshin-ab.cfg does not use %q", name)
		}
	}
}
