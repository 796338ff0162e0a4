package uboot_test

import (
	"bytes"
	"encoding/binary"
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/koshin-ota/koshin/agent/uboot"
)

// Fixtures made by mkenvimage and fw_setenv (commands in testdata/README)
// pin the format byte for byte without needing the tools installed.

func TestGoldenMkenvimage(t *testing.T) {
	skipBigEndian(t)
	raw := mustRead(t, "testdata/mkenvimage-single.bin")
	img, err := uboot.Decode(raw, false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"arch":        "arm",
		"bootcmd":     "run koshin_boot_${koshin_slot}",
		"koshin_slot": "A",
		"msg":         `a=b "c" d`,
	}
	if !maps.Equal(img.Vars, want) {
		t.Fatalf("vars %q, want %q", img.Vars, want)
	}
	if enc := mustEncode(t, want, len(raw), false, 0); !bytes.Equal(enc, raw) {
		t.Fatalf("koshin encoding differs from mkenvimage -p 0:\n%x\n%x", enc, raw)
	}
}

func TestGoldenFwSetenvRedundant(t *testing.T) {
	skipBigEndian(t)
	dir := t.TempDir()
	cfg := uboot.Config{}
	for _, name := range []string{"fw_setenv-copy0.bin", "fw_setenv-copy1.bin"} {
		path := filepath.Join(dir, name)
		mustWrite(t, path, mustRead(t, filepath.Join("testdata", name)))
		cfg.Copies = append(cfg.Copies, uboot.Location{Path: path, Size: 0x100})
	}
	e := mustOpen(t, cfg)
	want := map[string]string{
		"bootcount": "0", "bootlimit": "3", "koshin_slot": "B",
		"note": "two\nlines", "upgrade_available": "1",
	}
	if got := e.All(); !maps.Equal(got, want) {
		t.Fatalf("vars %q, want %q", got, want)
	}
	// fw_setenv's last write (copy 1, flags 4) is what koshin encodes.
	if enc := mustEncode(t, want, 0x100, true, 4); !bytes.Equal(enc, mustRead(t, "testdata/fw_setenv-copy1.bin")) {
		t.Fatal("koshin encoding differs from fw_setenv's copy 1")
	}
	// koshin's next write goes to copy 0 with flags 5.
	mustSet(t, e, "koshin_slot", "A")
	mustSave(t, e)
	if img, err := readCopy(t, cfg, 0); err != nil || img.Flags != 5 || img.Vars["koshin_slot"] != "A" {
		t.Fatalf("copy 0 after Save: %+v, %v", img, err)
	}
}

// skipBigEndian: the fixtures were made on a little-endian machine and the
// CRC is stored in the CPU's byte order.
func skipBigEndian(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("fixtures hold little-endian CRCs; this CPU is big-endian")
	}
}

func mustRead(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
