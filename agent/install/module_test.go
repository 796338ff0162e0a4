package install_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/agent/install"
)

// module writes a shell update module that logs each state and fails in
// the state named by the file "fail-in" next to it.
func module(t *testing.T) (install.Module, string) {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	script := `#!/bin/sh
state=$1 work=$2
echo "$state $(cat "$work/payload") $(grep -o '"version":"[^"]*"' "$work/target.json")" >> ` + log + `
if [ "$(cat ` + dir + `/fail-in 2>/dev/null)" = "$state" ]; then echo "cannot $state" >&2; exit 1; fi
if [ "$(cat ` + dir + `/hang-in 2>/dev/null)" = "$state" ]; then exec sleep 30; fi
`
	p := filepath.Join(dir, "mod")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return install.Module{Path: p, Work: filepath.Join(dir, "work"), Timeout: 10 * time.Second}, dir
}

func TestModuleProtocol(t *testing.T) {
	ctx := context.Background()
	m, dir := module(t)
	tr := stage(t, &m, "tx1", "app.bin", []byte("payload-2"))
	if err := m.Install(ctx, tr); err != nil {
		t.Fatal(err)
	}
	if err := m.Commit(ctx, tr); err != nil {
		t.Fatal(err)
	}
	want := `download payload-2 "version":"2"
install payload-2 "version":"2"
commit payload-2 "version":"2"
`
	if got := read(t, filepath.Join(dir, "log")); got != want {
		t.Fatalf("module saw:\n%s\nwant:\n%s", got, want)
	}
	if _, err := os.Stat(filepath.Join(m.Work, "tx1")); !os.IsNotExist(err) {
		t.Fatal("WORKDIR kept after commit")
	}
}

func TestModuleFailureAndRollback(t *testing.T) {
	ctx := context.Background()
	m, dir := module(t)
	os.WriteFile(filepath.Join(dir, "fail-in"), []byte("install"), 0o600)
	tr := stage(t, &m, "tx1", "app.bin", []byte("p"))
	err := m.Install(ctx, tr)
	if err == nil || !strings.Contains(err.Error(), "cannot install") {
		t.Fatalf("install: %v, want the module's failure with its output", err)
	}
	if err := m.Rollback(ctx, tr); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(dir, "log")); !strings.HasSuffix(got, "rollback p \"version\":\"2\"\n") {
		t.Fatalf("log %q: rollback not run", got)
	}
	// Rollback without install (failed download) does not involve the module.
	fresh := stage(t, &m, "tx2", "app.bin", []byte("q"))
	if err := m.Rollback(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(read(t, filepath.Join(dir, "log")), " q ") {
		t.Fatal("module called for a payload it never got")
	}
}

func TestModuleTimeout(t *testing.T) {
	m, dir := module(t)
	m.Timeout = 50 * time.Millisecond
	os.WriteFile(filepath.Join(dir, "hang-in"), []byte("download"), 0o600)
	tr := stage(t, &m, "tx1", "app.bin", []byte("p"))
	if err := m.Install(context.Background(), tr); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("hanging module: %v", err)
	}
}
