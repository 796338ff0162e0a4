package agent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/agent"
)

func script(t *testing.T, dir, name, body string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), mode); err != nil {
		t.Fatal(err)
	}
}

func TestDirHealthCheck(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	ctx := context.Background()
	dir := t.TempDir()
	h := agent.DirHealthCheck{Dir: dir, Timeout: 10 * time.Second}
	if err := (agent.DirHealthCheck{Dir: filepath.Join(dir, "missing")}).Check(ctx); err != nil {
		t.Fatalf("missing directory: %v", err)
	}
	script(t, dir, "10-ok", "exit 0", 0o755)
	script(t, dir, "20-not-executable", "exit 1", 0o644)
	if err := h.Check(ctx); err != nil {
		t.Fatalf("passing checks: %v", err)
	}
	script(t, dir, "30-fails", "echo database down >&2; exit 3", 0o755)
	err := h.Check(ctx)
	if !errors.Is(err, agent.ErrHealth) {
		t.Fatalf("failing check: %v, want ErrHealth", err)
	}
	if want := "30-fails"; !contains(err.Error(), want) || !contains(err.Error(), "database down") {
		t.Fatalf("error %q should name the check and its output", err)
	}
}

func TestDirHealthCheckTimeout(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	dir := t.TempDir()
	script(t, dir, "hangs", "exec sleep 30", 0o755)
	err := agent.DirHealthCheck{Dir: dir, Timeout: 50 * time.Millisecond}.Check(context.Background())
	if !errors.Is(err, agent.ErrHealth) || !contains(err.Error(), "timed out") {
		t.Fatalf("hanging check: %v, want a timeout failure", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
