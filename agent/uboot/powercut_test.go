package uboot

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"testing"
)

var errPowerCut = errors.New("power cut")

// cutAfter simulates losing power after n bytes of a write reached the medium.
func cutAfter(n int) writeAtFunc {
	return func(f *os.File, b []byte, off int64) (int, error) {
		w, err := f.WriteAt(b[:min(n, len(b))], off)
		if err != nil {
			return w, err
		}
		return w, errPowerCut
	}
}

func mustEncodeT(t *testing.T, vars map[string]string, flags uint8) []byte {
	t.Helper()
	b, err := Encode(Image{Vars: vars, Flags: flags}, 256, true)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, vars map[string]string, redundant bool, flags uint8) {
	t.Helper()
	b, err := Encode(Image{Vars: vars, Flags: flags}, 256, redundant)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A power cut at any byte of a redundant Save leaves either the complete old
// values or the complete new values, never an error or a mix.
func TestPowerCutDuringRedundantSave(t *testing.T) {
	old := map[string]string{"koshin_slot": "A", "upgrade_available": "0", "bootcmd": "run a"}
	older := map[string]string{"koshin_slot": "B", "bootcmd": "run old"}
	next := map[string]string{"koshin_slot": "B", "upgrade_available": "1", "bootcmd": "run a", "bootcount": "0"}
	seen := map[bool]int{} // outcomes: new values visible or not
	for n := 0; n <= 256; n++ {
		dir := t.TempDir()
		cfg := Config{Copies: []Location{{filepath.Join(dir, "0"), 0, 256}, {filepath.Join(dir, "1"), 0, 256}}}
		writeFile(t, cfg.Copies[0].Path, old, true, 7)
		writeFile(t, cfg.Copies[1].Path, older, true, 6)
		e, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.setMany("upgrade_available", "1", "koshin_slot", "B", "bootcount", "0"); err != nil {
			t.Fatal(err)
		}
		e.writeAt = cutAfter(n)
		err = e.Save()
		if n < 256 && !errors.Is(err, errPowerCut) {
			t.Fatalf("cut after %d: Save err %v", n, err)
		}
		after, err := Open(cfg)
		if err != nil {
			t.Fatalf("cut after %d: reopen: %v", n, err)
		}
		// New values are visible only once the copy on the medium is
		// the complete new image (here: when the unwritten tail of the
		// older copy already matches it).
		want := old
		if bytes.Equal(mustEncodeT(t, next, 8)[n:], mustEncodeT(t, older, 6)[n:]) {
			want = next
		}
		if got := after.All(); !maps.Equal(got, want) {
			t.Fatalf("cut after %d: read %q, want %q", n, got, want)
		}
		seen[maps.Equal(want, next)]++
	}
	if seen[false] == 0 || seen[true] == 0 {
		t.Fatalf("outcomes %v: the cut points must cover both old and new", seen)
	}
}

// After a failed redundant write the same Env can retry: the copy it read
// from is untouched, so the retry is not mistaken for a concurrent writer.
func TestRetryAfterFailedRedundantWrite(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Copies: []Location{{filepath.Join(dir, "0"), 0, 256}, {filepath.Join(dir, "1"), 0, 256}}}
	writeFile(t, cfg.Copies[0].Path, map[string]string{"v": "old"}, true, 1)
	writeFile(t, cfg.Copies[1].Path, map[string]string{"v": "older"}, true, 0)
	e, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.Set("v", "new")
	e.writeAt = cutAfter(10)
	if err := e.Save(); !errors.Is(err, errPowerCut) {
		t.Fatalf("Save err %v", err)
	}
	e.writeAt = (*os.File).WriteAt
	if err := e.Save(); err != nil {
		t.Fatalf("retry: %v", err)
	}
	reopened, err := Open(cfg)
	if err != nil || reopened.vars["v"] != "new" || reopened.snap.flags != 2 {
		t.Fatalf("after retry: %v %q flags %d", err, reopened.All(), reopened.snap.flags)
	}
}

// A single copy is rewritten in place: a power cut mid-write destroys it
// (documented), and a retry from the same Env must still be possible.
func TestPowerCutDuringSingleSave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	writeFile(t, path, map[string]string{"v": "old"}, false, 0)
	cfg := Config{Copies: []Location{{path, 0, 256}}}
	e, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.Set("v", "new")
	e.writeAt = cutAfter(6)
	if err := e.Save(); !errors.Is(err, errPowerCut) {
		t.Fatalf("Save err %v", err)
	}
	if _, err := Open(cfg); !errors.Is(err, ErrBadCRC) {
		t.Fatalf("torn single copy: Open err %v, want ErrBadCRC", err)
	}
	e.writeAt = (*os.File).WriteAt
	if err := e.Save(); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if e2, err := Open(cfg); err != nil || e2.vars["v"] != "new" {
		t.Fatalf("after retry: %v", err)
	}
}

// Refused saves write nothing at all.
func TestSaveTooLargeWritesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "env")
	writeFile(t, path, map[string]string{"v": "old"}, false, 0)
	before, _ := os.ReadFile(path)
	e, err := Open(Config{Copies: []Location{{path, 0, 256}}})
	if err != nil {
		t.Fatal(err)
	}
	e.vars["big"] = string(bytes.Repeat([]byte("x"), 300)) // bypass Set's check
	e.writeAt = func(*os.File, []byte, int64) (int, error) {
		t.Fatal("write attempted")
		return 0, nil
	}
	if err := e.Save(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err %v, want ErrTooLarge", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("file changed")
	}
}

// Like fw_setenv, Save skips the write when no value changed, but it still
// reports a concurrent writer.
func TestSaveUnchangedWritesNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Copies: []Location{{filepath.Join(dir, "0"), 0, 256}, {filepath.Join(dir, "1"), 0, 256}}}
	writeFile(t, cfg.Copies[0].Path, map[string]string{"v": "old"}, true, 1)
	writeFile(t, cfg.Copies[1].Path, map[string]string{"v": "older"}, true, 0)
	e, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.writeAt = func(*os.File, []byte, int64) (int, error) {
		t.Fatal("write attempted")
		return 0, nil
	}
	e.Set("v", "old")
	if err := e.Save(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfg.Copies[1].Path, map[string]string{"v": "theirs"}, true, 2)
	if err := e.Save(); !errors.Is(err, ErrChanged) {
		t.Fatalf("err %v, want ErrChanged", err)
	}
}
