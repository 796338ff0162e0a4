package uboot_test

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/agent/uboot"
)

// These tests cross-check koshin against the reference tools: fw_printenv and
// fw_setenv (Debian libubootenv-tool) and mkenvimage (Debian u-boot-tools).

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	if os.Getenv("KOSHIN_INTEGRATION") != "1" {
		t.Skip("interop test: set KOSHIN_INTEGRATION=1 to run against fw_printenv/fw_setenv (libubootenv-tool) and mkenvimage (u-boot-tools)")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("interop test: %s not on PATH (Debian: apt-get install libubootenv-tool u-boot-tools)", tool)
		}
	}
}

// rig is an environment on files plus the fw_env.config describing it.
type rig struct {
	t       *testing.T
	cfgPath string
	cfg     uboot.Config
}

// newRig writes a fw_env.config for copies of size bytes: one file, or two
// copies at offsets size and 2*size of one file (as on an eMMC boot area).
func newRig(t *testing.T, redundant bool, size int) *rig {
	dir := t.TempDir()
	env := filepath.Join(dir, "env.img")
	mustWrite(t, env, make([]byte, 3*size))
	text := fmt.Sprintf("# test environment\n%s 0x%x 0x%x\n", env, size, size)
	if redundant {
		text += fmt.Sprintf("%s 0x%x 0x%x\n", env, 2*size, size)
	}
	r := &rig{t: t, cfgPath: filepath.Join(dir, "fw_env.config")}
	mustWrite(t, r.cfgPath, []byte(text))
	cfg, err := uboot.ParseFwEnvConfig(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	r.cfg = cfg
	return r
}

// put writes raw bytes as copy i.
func (r *rig) put(i int, raw []byte) {
	r.t.Helper()
	f, err := os.OpenFile(r.cfg.Copies[i].Path, os.O_WRONLY, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(raw, r.cfg.Copies[i].Offset); err != nil {
		r.t.Fatal(err)
	}
}

// copyBytes returns the raw bytes of copy i.
func (r *rig) copyBytes(i int) []byte {
	r.t.Helper()
	all := mustRead(r.t, r.cfg.Copies[i].Path)
	loc := r.cfg.Copies[i]
	return all[loc.Offset : loc.Offset+loc.Size]
}

func (r *rig) fwSetenv(name, value string) {
	r.t.Helper()
	run(r.t, "fw_setenv", "-c", r.cfgPath, name, value)
}

// fwPrintenv lists the variables as fw_printenv sees them. A line without
// '=' continues the previous value (the test values that hold a newline have
// no '=' after it).
func (r *rig) fwPrintenv() map[string]string {
	r.t.Helper()
	got := map[string]string{}
	last := ""
	for _, line := range strings.Split(strings.TrimSuffix(run(r.t, "fw_printenv", "-c", r.cfgPath), "\n"), "\n") {
		name, value, ok := strings.Cut(line, "=")
		if !ok && last != "" {
			got[last] += "\n" + line
			continue
		}
		if !ok {
			r.t.Fatalf("fw_printenv line %q", line)
		}
		got[name], last = value, name
	}
	return got
}

func (r *rig) fwValue(name string) string {
	r.t.Helper()
	return strings.TrimSuffix(run(r.t, "fw_printenv", "-c", r.cfgPath, "-n", name), "\n")
}

func (r *rig) koshin() map[string]string {
	r.t.Helper()
	return mustOpen(r.t, r.cfg).All()
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, stderr.String())
	}
	return stdout.String()
}

// mkenvimage builds an image from vars written in the given order.
func mkenvimage(t *testing.T, vars map[string]string, size int, extra ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	var in strings.Builder
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		fmt.Fprintf(&in, "%s=%s\n", name, vars[name])
	}
	src, out := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.bin")
	mustWrite(t, src, []byte(in.String()))
	args := append(append([]string{}, extra...), "-s", fmt.Sprintf("0x%x", size), "-o", out, src)
	run(t, "mkenvimage", args...)
	return mustRead(t, out)
}

var interopVars = map[string]string{
	"bootcmd":     `if test "${koshin_slot}" = "B"; then run boot_b; else run boot_a; fi`,
	"koshin_slot": "A",
	"bootlimit":   "3",
	"spaces":      "  leading and trailing  ",
	"symbols":     `a=b;c\d'e"f$g#h`,
	"utf8":        "ステータス",
	"empty":       "",
}

// (a) Environments written by koshin are read by fw_printenv.
func TestInteropKoshinToFwPrintenv(t *testing.T) {
	needTools(t, "fw_printenv")
	for _, redundant := range []bool{false, true} {
		t.Run(fmt.Sprintf("redundant=%v", redundant), func(t *testing.T) {
			r := newRig(t, redundant, 0x4000)
			r.put(0, mustEncode(t, interopVars, 0x4000, redundant, 254))
			want := maps.Clone(interopVars)
			for i := range 4 { // across the 255 -> 0 flags wrap when redundant
				e := mustOpen(t, r.cfg)
				want["step"] = fmt.Sprint(i)
				mustSet(t, e, "step", want["step"], "note", "two\nlines")
				mustSave(t, e)
				want["note"] = "two\nlines"
				if got := r.fwPrintenv(); !maps.Equal(got, want) {
					t.Fatalf("step %d: fw_printenv %q, want %q", i, got, want)
				}
				if v := r.fwValue("note"); v != "two\nlines" {
					t.Fatalf("step %d: note %q", i, v)
				}
			}
		})
	}
}

// (b) Environments made by mkenvimage and changed by fw_setenv are read by
// koshin, including as the redundant flags advance.
func TestInteropFwSetenvToKoshin(t *testing.T) {
	needTools(t, "mkenvimage", "fw_setenv")
	for _, redundant := range []bool{false, true} {
		t.Run(fmt.Sprintf("redundant=%v", redundant), func(t *testing.T) {
			r := newRig(t, redundant, 0x4000)
			var extra []string
			if redundant {
				extra = []string{"-r"}
			}
			r.put(0, mkenvimage(t, interopVars, 0x4000, extra...)) // default 0xff padding
			want := maps.Clone(interopVars)
			for i := range 5 {
				if got := r.koshin(); !maps.Equal(got, want) {
					t.Fatalf("after %d fw_setenv: koshin %q, want %q", i, got, want)
				}
				want["koshin_slot"] = string(rune('B' - i%2)) // always a change
				want[fmt.Sprintf("v%d", i)] = "x\ny"
				r.fwSetenv("koshin_slot", want["koshin_slot"])
				r.fwSetenv(fmt.Sprintf("v%d", i), "x\ny")
			}
			if redundant {
				// mkenvimage -r writes flags 1; ten fw_setenv calls later
				// the newest copy has flags 11.
				img0, _ := uboot.Decode(r.copyBytes(0), true)
				img1, _ := uboot.Decode(r.copyBytes(1), true)
				if max(img0.Flags, img1.Flags) != 11 {
					t.Fatalf("flags %d and %d, want newest 11", img0.Flags, img1.Flags)
				}
			}
		})
	}
}

// (c) koshin's encoding equals mkenvimage's (with zero padding) byte for byte.
func TestInteropEncodeMatchesMkenvimage(t *testing.T) {
	needTools(t, "mkenvimage")
	for _, redundant := range []bool{false, true} {
		extra := []string{"-p", "0"}
		if redundant {
			extra = append(extra, "-r")
		}
		want := mkenvimage(t, interopVars, 0x2000, extra...)
		// mkenvimage -r marks its single image active with flags 1.
		if got := mustEncode(t, interopVars, 0x2000, redundant, 1); !bytes.Equal(got, want) {
			t.Fatalf("redundant=%v: koshin and mkenvimage differ", redundant)
		}
	}
}

// (c) The same change made by fw_setenv and by koshin, starting from the
// same bytes, leaves identical bytes in every copy.
func TestInteropSaveMatchesFwSetenv(t *testing.T) {
	needTools(t, "fw_setenv")
	for _, redundant := range []bool{false, true} {
		tool, ours := newRig(t, redundant, 0x1000), newRig(t, redundant, 0x1000)
		start := mustEncode(t, interopVars, 0x1000, redundant, 254)
		for _, r := range []*rig{tool, ours} {
			r.put(0, start)
		}
		for i := range 4 {
			name, value := fmt.Sprintf("k%d", i%2), strings.Repeat("v", i+1)
			tool.fwSetenv(name, value)
			e := mustOpen(t, ours.cfg)
			mustSet(t, e, name, value)
			mustSave(t, e)
			for c := range tool.cfg.Copies {
				if !bytes.Equal(tool.copyBytes(c), ours.copyBytes(c)) {
					t.Fatalf("redundant=%v step %d: copy %d differs from fw_setenv's", redundant, i, c)
				}
			}
		}
	}
}

// Writers alternate between fw_setenv and koshin across the flags wrap; both
// readers always agree with what was written last.
func TestInteropAlternatingWriters(t *testing.T) {
	needTools(t, "fw_setenv", "fw_printenv")
	r := newRig(t, true, 0x1000)
	r.put(1, mustEncode(t, interopVars, 0x1000, true, 252))
	want := maps.Clone(interopVars)
	for i := range 8 {
		want["koshin_slot"] = fmt.Sprintf("S%d", i)
		if i%2 == 0 {
			r.fwSetenv("koshin_slot", want["koshin_slot"])
		} else {
			e := mustOpen(t, r.cfg)
			mustSet(t, e, "koshin_slot", want["koshin_slot"])
			mustSave(t, e)
		}
		if got := r.koshin(); !maps.Equal(got, want) {
			t.Fatalf("step %d: koshin %q", i, got)
		}
		if got := r.fwPrintenv(); !maps.Equal(got, want) {
			t.Fatalf("step %d: fw_printenv %q", i, got)
		}
	}
}

// The documented A/B environment builds with mkenvimage, and ArmTrial on it
// is visible to fw_printenv.
func TestInteropABBootEnv(t *testing.T) {
	needTools(t, "mkenvimage", "fw_printenv")
	r := newRig(t, true, 0x4000)
	out := filepath.Join(t.TempDir(), "ab.bin")
	run(t, "mkenvimage", "-r", "-s", "0x4000", "-o", out, "testdata/ab-boot.env")
	r.put(0, mustRead(t, out))
	e := mustOpen(t, r.cfg)
	if err := e.ArmTrial(uboot.DefaultSlotVar, "B"); err != nil {
		t.Fatal(err)
	}
	mustSave(t, e)
	for name, want := range map[string]string{"koshin_slot": "B", "upgrade_available": "1", "bootcount": "0", "bootlimit": "3"} {
		if got := r.fwValue(name); got != want {
			t.Errorf("fw_printenv %s = %q, want %q", name, got, want)
		}
	}
	if v := r.fwValue("altbootcmd"); !strings.Contains(v, "setenv upgrade_available 0") {
		t.Errorf("altbootcmd %q", v)
	}
}
