package uboot_test

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/koshin-ota/koshin/agent/uboot"
)

const envSize = 0x400

func mustEncode(tb testing.TB, vars map[string]string, size int, redundant bool, flags uint8) []byte {
	tb.Helper()
	b, err := uboot.Encode(uboot.Image{Vars: vars, Flags: flags}, size, redundant)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// withCRC makes a single-copy image from a raw data area.
func withCRC(data string) []byte {
	b := make([]byte, 4+len(data))
	copy(b[4:], data)
	binary.NativeEndian.PutUint32(b, crc32.ChecksumIEEE(b[4:]))
	return b
}

// redundantEnv creates two copy files holding vars0 (flags f0) and vars1
// (flags f1); a nil map leaves that copy zero-filled, i.e. invalid.
func redundantEnv(tb testing.TB, vars0 map[string]string, f0 uint8, vars1 map[string]string, f1 uint8) uboot.Config {
	tb.Helper()
	dir := tb.TempDir()
	cfg := uboot.Config{}
	for i, c := range []struct {
		vars  map[string]string
		flags uint8
	}{{vars0, f0}, {vars1, f1}} {
		b := make([]byte, envSize)
		if c.vars != nil {
			b = mustEncode(tb, c.vars, envSize, true, c.flags)
		}
		path := filepath.Join(dir, []string{"env0", "env1"}[i])
		mustWrite(tb, path, b)
		cfg.Copies = append(cfg.Copies, uboot.Location{Path: path, Size: envSize})
	}
	return cfg
}

func singleEnv(tb testing.TB, vars map[string]string) uboot.Config {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "env")
	mustWrite(tb, path, mustEncode(tb, vars, envSize, false, 0))
	return uboot.Config{Copies: []uboot.Location{{Path: path, Size: envSize}}}
}

func mustWrite(tb testing.TB, path string, b []byte) {
	tb.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}

func mustOpen(tb testing.TB, cfg uboot.Config) *uboot.Env {
	tb.Helper()
	e, err := uboot.Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func mustSet(tb testing.TB, e *uboot.Env, kv ...string) {
	tb.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := e.Set(kv[i], kv[i+1]); err != nil {
			tb.Fatal(err)
		}
	}
}

func mustSave(tb testing.TB, e *uboot.Env) {
	tb.Helper()
	if err := e.Save(); err != nil {
		tb.Fatal(err)
	}
}

// readCopy decodes copy i of cfg straight from its file.
func readCopy(tb testing.TB, cfg uboot.Config, i int) (uboot.Image, error) {
	tb.Helper()
	loc := cfg.Copies[i]
	f, err := os.Open(loc.Path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, loc.Size)
	if _, err := f.ReadAt(b, loc.Offset); err != nil {
		tb.Fatal(err)
	}
	return uboot.Decode(b, cfg.Redundant())
}

func wantVar(tb testing.TB, e *uboot.Env, name, want string) {
	tb.Helper()
	if got, ok := e.Get(name); !ok || got != want {
		tb.Fatalf("%s = %q (set %v), want %q", name, got, ok, want)
	}
}
