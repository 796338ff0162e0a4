package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/trust/keys"
)

// TestQuickstart runs `koshin quickstart --devices 50 --exit-when-done`
// in process, as CI does: it must exit 0 with a summary showing the
// rollout completed, the failing devices rolled back and none bricked,
// print the random administrator password, and remove its directory.
func TestQuickstart(t *testing.T) {
	var out, errOut bytes.Buffer
	m := NewMain(&out, &errOut)
	m.KDF = keys.KDFParams{Time: 1, MemoryKiB: 8 << 10, Threads: 1} // director key files; the rest is as shipped
	if code := m.Run([]string{"quickstart", "--devices", "50", "--exit-when-done"}); code != 0 {
		t.Fatalf("exit status %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	got := out.String()
	for _, want := range []string{
		"rollout 1: completed", "48 updated to 1.1, 2 rolled back to 1.0", "bricked devices: 0",
		"unexpected errors: 0", "The rollout completed as expected.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if !regexp.MustCompile(`created with a random password.*\n\s+\S{20,}\n`).MatchString(got) {
		t.Errorf("no password printed:\n%s", got)
	}
	dir := regexp.MustCompile(`working directory (\S+)\)`).FindStringSubmatch(got)
	if dir == nil {
		t.Fatalf("no working directory in the output:\n%s", got)
	}
	if _, err := os.Stat(dir[1]); !os.IsNotExist(err) {
		t.Errorf("working directory %s left behind (%v)", dir[1], err)
	}
}

// TestQuickstartFlags: bad flag values are usage errors.
func TestQuickstartFlags(t *testing.T) {
	for _, args := range [][]string{
		{"quickstart", "--devices", "2"},
		{"quickstart", "--devices", "10", "--failing", "10"},
	} {
		var out bytes.Buffer
		if code := NewMain(&out, &out).Run(args); code != 2 {
			t.Errorf("%v: exit status %d, want 2\n%s", args, code, out.String())
		}
	}
}
