package grub_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/agent/grub"
)

func mustSet(tb testing.TB, e *grub.Env, kv ...string) {
	tb.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := e.Set(kv[i], kv[i+1]); err != nil {
			tb.Fatal(err)
		}
	}
}

func mustRead(tb testing.TB, path string) *grub.Env {
	tb.Helper()
	e, err := grub.Read(path)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func writeBlock(tb testing.TB, b []byte) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "grubenv")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// Set and Delete edit lines in place like grub-editenv, keeping comments and
// the order of the other lines.
func TestEditsKeepLayout(t *testing.T) {
	start := header + "# site comment\na=1\nb=22\nc=3\n"
	e := mustRead(t, writeBlock(t, block(start)))
	mustSet(t, e, "b", "longer value", "a", "", "d", "new")
	if err := e.Delete("c"); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete("missing"); err != nil {
		t.Fatal(err)
	}
	want := block(header + "# site comment\na=\nb=longer value\nd=new\n")
	if got := e.Bytes(); !bytes.Equal(got, want) {
		t.Fatalf("block\n%q\nwant\n%q", got, want)
	}
	if v, ok := e.Get("b"); !ok || v != "longer value" {
		t.Fatalf("Get(b) = %q, %v", v, ok)
	}
	if _, ok := e.Get("c"); ok {
		t.Fatal("c still set")
	}
}

func TestSetRefusalChangesNothing(t *testing.T) {
	e := grub.Create(filepath.Join(t.TempDir(), "grubenv"))
	mustSet(t, e, "a", "1")
	before := e.Bytes()
	for _, tt := range []struct {
		name, value string
		want        error
	}{
		{"", "x", grub.ErrInvalidName},
		{"#x", "x", grub.ErrInvalidName},
		{"a=b", "x", grub.ErrInvalidName},
		{"a", "x\x00", grub.ErrInvalidValue},
		{"a", strings.Repeat("x", grub.BlockSize), grub.ErrTooLarge},
		{"b", strings.Repeat("\\", 480), grub.ErrTooLarge},
	} {
		if err := e.Set(tt.name, tt.value); !errors.Is(err, tt.want) {
			t.Errorf("Set(%q): err %v, want %v", tt.name, err, tt.want)
		}
	}
	if err := e.Delete("a=b"); !errors.Is(err, grub.ErrInvalidName) {
		t.Errorf("Delete(a=b): %v", err)
	}
	if !bytes.Equal(e.Bytes(), before) {
		t.Fatal("block changed by refused edits")
	}
}

func TestCreateSaveRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grubenv")
	e := grub.Create(path)
	mustSet(t, e, "koshin_order", "A B", "note", "two\nlines\\")
	if err := e.Save(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Size() != grub.BlockSize || fi.Mode().Perm() != 0o644 {
		t.Fatalf("saved file: %v, %v", fi, err)
	}
	got := mustRead(t, path).All()
	want := []grub.Var{{"koshin_order", "A B"}, {"note", "two\nlines\\"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back %q, want %q", got, want)
	}
}

// An existing block keeps its size and mode; untouched bytes stay as they
// were.
func TestSaveKeepsSizeAndMode(t *testing.T) {
	content := grub.Signature + "a=1\n"
	b := []byte(content + strings.Repeat("#", 2048-len(content)))
	path := writeBlock(t, b)
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	e := mustRead(t, path)
	if err := e.Save(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, b) {
		t.Fatal("unchanged block rewritten differently")
	}
	mustSet(t, e, "b", "2")
	if err := e.Save(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Size() != 2048 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("size %d mode %v, want 2048 0600", fi.Size(), fi.Mode().Perm())
	}
}

// A symlinked grubenv stays a symlink; its target gets the new block.
func TestSaveThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	target := writeBlock(t, block(header))
	link := filepath.Join(dir, "grubenv")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	e := mustRead(t, link)
	mustSet(t, e, "a", "1")
	if err := e.Save(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("link replaced: %v, %v", fi, err)
	}
	if v, _ := mustRead(t, target).Get("a"); v != "1" {
		t.Fatalf("target a=%q", v)
	}
}

func TestReadRejects(t *testing.T) {
	if _, err := grub.Read(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	// Readable by GRUB, but grub-editenv could not edit it: no newline
	// before the end of the block.
	if _, err := grub.Read(writeBlock(t, []byte(grub.Signature+"# trailing comment"))); !errors.Is(err, grub.ErrMalformed) {
		t.Errorf("no newline before padding: %v", err)
	}
	big := writeBlock(t, []byte(grub.Signature+strings.Repeat("#", grub.MaxSize)))
	if _, err := grub.Read(big); !errors.Is(err, grub.ErrTooLarge) {
		t.Errorf("oversized file: %v", err)
	}
}
