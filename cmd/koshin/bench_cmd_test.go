package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestBenchCheckIn runs the load generator briefly so that it keeps
// working; the figures themselves are measured by hand (docs/benchmarks.md),
// never asserted.
func TestBenchCheckIn(t *testing.T) {
	var out, errb bytes.Buffer
	m := NewMain(&out, &errb)
	m.KDF.Time, m.KDF.MemoryKiB, m.KDF.Threads = 1, 8<<10, 1
	for _, key := range []string{"p256", "ed25519"} {
		out.Reset()
		if code := m.Run([]string{"bench", "checkin", "--devices", "3", "--duration", "200ms", "--key", key, "--data-dir", t.TempDir()}); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		if !strings.Contains(out.String(), "check-ins/s") || strings.Contains(out.String(), "failed:") {
			t.Fatalf("output: %s", out.String())
		}
	}
}
