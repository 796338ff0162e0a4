package uboot_test

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/agent/uboot"
)

func TestSingleSetSaveReopen(t *testing.T) {
	cfg := singleEnv(t, map[string]string{"bootcmd": "boot", "old": "x"})
	e := mustOpen(t, cfg)
	mustSet(t, e, "koshin_slot", "B", "bootcmd", "run b")
	if err := e.Delete("old"); err != nil {
		t.Fatal(err)
	}
	mustSave(t, e)
	got := mustOpen(t, cfg).All()
	want := map[string]string{"bootcmd": "run b", "koshin_slot": "B"}
	if !maps.Equal(got, want) {
		t.Fatalf("reopened %q, want %q", got, want)
	}
}

func TestRedundantPicksNewerValidCopy(t *testing.T) {
	a, b := map[string]string{"v": "copy0"}, map[string]string{"v": "copy1"}
	tests := []struct {
		name   string
		v0, v1 map[string]string
		f0, f1 uint8
		want   string
	}{
		{"copy1 newer", a, b, 5, 6, "copy1"},
		{"copy0 newer", a, b, 6, 5, "copy0"},
		{"equal flags keep copy0", a, b, 9, 9, "copy0"},
		{"0 follows 255", a, b, 255, 0, "copy1"},
		{"0 follows 255 reversed", a, b, 0, 255, "copy0"},
		{"254 vs 255", a, b, 255, 254, "copy0"},
		{"copy0 invalid", nil, b, 0, 1, "copy1"},
		{"copy1 invalid", a, nil, 7, 0, "copy0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustOpen(t, redundantEnv(t, tt.v0, tt.f0, tt.v1, tt.f1))
			wantVar(t, e, "v", tt.want)
		})
	}
}

// A corrupted copy is ignored even when its flags say it is newer.
func TestRedundantCorruptNewerCopy(t *testing.T) {
	cfg := redundantEnv(t, map[string]string{"v": "old"}, 1, map[string]string{"v": "new"}, 2)
	garble(t, cfg.Copies[1].Path, 20)
	wantVar(t, mustOpen(t, cfg), "v", "old")
}

func TestRedundantSaveAlternatesCopies(t *testing.T) {
	cfg := redundantEnv(t, map[string]string{"n": "0"}, 254, nil, 0)
	e := mustOpen(t, cfg)
	// From flags 254 in copy 0: copy 1 gets 255, copy 0 gets 0, copy 1 gets 1.
	for i, want := range []struct {
		copy  int
		flags uint8
	}{{1, 255}, {0, 0}, {1, 1}, {0, 2}} {
		val := string(rune('1' + i))
		mustSet(t, e, "n", val)
		mustSave(t, e)
		img, err := readCopy(t, cfg, want.copy)
		if err != nil {
			t.Fatalf("save %d: copy %d: %v", i, want.copy, err)
		}
		if img.Flags != want.flags || img.Vars["n"] != val {
			t.Fatalf("save %d: copy %d has flags %d n=%q, want %d %q", i, want.copy, img.Flags, img.Vars["n"], want.flags, val)
		}
		// The untouched copy still holds the previous generation.
		if prev, err := readCopy(t, cfg, 1-want.copy); err != nil || prev.Flags != want.flags-1 {
			t.Fatalf("save %d: other copy flags %d, err %v; want %d", i, prev.Flags, err, want.flags-1)
		}
		wantVar(t, mustOpen(t, cfg), "n", val)
	}
}

// Both copies in one file at different offsets, as on an eMMC boot area.
func TestRedundantCopiesAtOffsets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mmcblk0boot0")
	mustWrite(t, path, make([]byte, 3*envSize))
	c0 := mustEncode(t, map[string]string{"v": "first"}, envSize, true, 1)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(c0, envSize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cfg := uboot.Config{Copies: []uboot.Location{{path, envSize, envSize}, {path, 2 * envSize, envSize}}}
	e := mustOpen(t, cfg)
	wantVar(t, e, "v", "first")
	mustSet(t, e, "v", "second")
	mustSave(t, e)
	raw, _ := os.ReadFile(path)
	if img, err := uboot.Decode(raw[2*envSize:], true); err != nil || img.Vars["v"] != "second" || img.Flags != 2 {
		t.Fatalf("copy at 2*size: %+v, %v", img, err)
	}
	if !allZero(raw[:envSize]) {
		t.Fatal("bytes before the first copy were written")
	}
}

func TestOpenNoValidCopy(t *testing.T) {
	cfg := redundantEnv(t, nil, 0, nil, 0)
	_, err := uboot.Open(cfg)
	if !errors.Is(err, uboot.ErrNoValidCopy) || !errors.Is(err, uboot.ErrBadCRC) {
		t.Fatalf("err %v, want ErrNoValidCopy and ErrBadCRC", err)
	}
	cfg.Copies[0].Path += ".missing"
	cfg.Copies[1].Path += ".missing"
	if _, err := uboot.Open(cfg); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing files: err %v, want ErrNotExist", err)
	}
}

func TestOpenTruncatedCopy(t *testing.T) {
	cfg := redundantEnv(t, map[string]string{"v": "old"}, 1, map[string]string{"v": "new"}, 2)
	if err := os.Truncate(cfg.Copies[1].Path, envSize/2); err != nil {
		t.Fatal(err)
	}
	wantVar(t, mustOpen(t, cfg), "v", "old")
}

func TestSetRefusesWhatCannotBeStored(t *testing.T) {
	cfg := singleEnv(t, map[string]string{"a": "1"})
	e := mustOpen(t, cfg)
	before, _ := os.ReadFile(cfg.Copies[0].Path)
	for _, tt := range []struct {
		name, value string
		want        error
	}{
		{"", "x", uboot.ErrInvalidName},
		{"a=b", "x", uboot.ErrInvalidName},
		{"a\x00", "x", uboot.ErrInvalidName},
		{"b", "x\x00", uboot.ErrInvalidValue},
		{"b", strings.Repeat("x", envSize), uboot.ErrTooLarge},
	} {
		if err := e.Set(tt.name, tt.value); !errors.Is(err, tt.want) {
			t.Errorf("Set(%q, %d bytes): err %v, want %v", tt.name, len(tt.value), err, tt.want)
		}
	}
	if err := e.Delete("x=y"); !errors.Is(err, uboot.ErrInvalidName) {
		t.Errorf("Delete(x=y): err %v", err)
	}
	if got := e.All(); !maps.Equal(got, map[string]string{"a": "1"}) {
		t.Fatalf("after refused sets: %q", got)
	}
	mustSave(t, e)
	if after, _ := os.ReadFile(cfg.Copies[0].Path); string(after) != string(before) {
		t.Fatal("environment bytes changed")
	}
}

// Another writer between Open and Save: Save must not clobber its change.
func TestSaveDetectsConcurrentWriter(t *testing.T) {
	for _, redundant := range []bool{false, true} {
		cfg := singleEnv(t, map[string]string{"v": "0"})
		if redundant {
			cfg = redundantEnv(t, map[string]string{"v": "0"}, 1, nil, 0)
		}
		mine, theirs := mustOpen(t, cfg), mustOpen(t, cfg)
		mustSet(t, theirs, "v", "theirs")
		mustSave(t, theirs)
		mustSet(t, mine, "v", "mine")
		if err := mine.Save(); !errors.Is(err, uboot.ErrChanged) {
			t.Fatalf("redundant=%v: err %v, want ErrChanged", redundant, err)
		}
		wantVar(t, mustOpen(t, cfg), "v", "theirs")
	}
}

func TestSaveWithLock(t *testing.T) {
	cfg := redundantEnv(t, map[string]string{"v": "0"}, 1, nil, 0)
	cfg.LockPath = filepath.Join(t.TempDir(), "fw_printenv.lock")
	e := mustOpen(t, cfg)
	mustSet(t, e, "v", "1")
	mustSave(t, e)
	wantVar(t, mustOpen(t, cfg), "v", "1")
}

func garble(tb testing.TB, path string, off int64) {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("garbage"), off); err != nil {
		tb.Fatal(err)
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
