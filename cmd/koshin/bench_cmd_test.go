package main

import (
	"bytes"
	"os"
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

// TestBenchCheckInReplicas runs the load generator against two replicas on
// a throw-away PostgreSQL database, as docs/scale-out.md measures.
func TestBenchCheckInReplicas(t *testing.T) {
	dsn := os.Getenv("KOSHIN_TEST_PG")
	if dsn == "" {
		t.Skip("KOSHIN_TEST_PG is not set: run .ci/start-postgres.sh")
	}
	var out, errb bytes.Buffer
	m := NewMain(&out, &errb)
	m.KDF.Time, m.KDF.MemoryKiB, m.KDF.Threads = 1, 8<<10, 1
	m.Getenv = func(k string) string {
		if k == envPostgresDSN {
			return dsn
		}
		return ""
	}
	if code := m.Run([]string{"bench", "checkin", "--store", "postgres", "--replicas", "2", "--devices", "4", "--duration", "200ms"}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "store postgres, 2 replica(s)") || strings.Count(out.String(), "server on ") != 2 ||
		strings.Contains(out.String(), "failed:") {
		t.Fatalf("output: %s", out.String())
	}
	if code := m.Run([]string{"bench", "checkin", "--replicas", "2", "--devices", "1"}); code == 0 {
		t.Fatal("two replicas on SQLite accepted")
	}
}
