package main

import (
	"strings"
	"testing"
)

// The README's first command: the demo must verify the honest update and
// see every attack rejected for the right reason (it exits 1 otherwise).
func TestDemo(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	c := newCLI(t)
	out, errOut, code := c.exec("demo")
	if code != 0 {
		t.Fatalf("demo exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"streamed 4194304 bytes of demo-os-1.1.img",
		"6 of 6 attacks rejected",
		"rejected: mismatch",
		"rejected: director targets: stale director nonce",
		"wrong hardware",
		"rollback: release counter 1 is below installed 2",
		"target not found",
		"wrong channel",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "NOT REJECTED") || strings.Contains(out, "wrong reason") {
		t.Errorf("an attack was not rejected properly:\n%s", out)
	}
}
