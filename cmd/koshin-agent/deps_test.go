package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// targets are the platforms the agent ships for.
var targets = []struct{ goos, goarch, goarm string }{
	{"linux", "arm64", ""},
	{"linux", "arm", "7"},
	{"linux", "amd64", ""},
}

// Packages the agent must never link (style rule 15; DESIGN §2): the
// server, its stores and their drivers, object storage, the web UI, and
// test helpers. A device runs only the update and reporting engines
// (CCDS), and every package not linked is attack surface not shipped
// (EN 303 645 5.6-6).
var (
	forbidden = map[string]string{
		"database/sql":                    "a database",
		"github.com/koshin-ota/koshin":    "the server's domain package",
		"testing":                         "test code",
		"net/http/httptest":               "test code",
		"github.com/spf13/cobra":          "the operator CLI's framework",
		"github.com/prometheus/procfs":    "server metrics",
		"github.com/pressly/goose/v3":     "database migrations",
		"github.com/ThalesGroup/crypto11": "the signer's HSM support",
	}
	forbiddenPrefixes = []string{
		"modernc.org/sqlite", "modernc.org/libc", "github.com/jackc/", "github.com/minio/", "github.com/aws/",
		"github.com/prometheus/",
		"github.com/koshin-ota/koshin/httpapi", "github.com/koshin-ota/koshin/pki",
		"github.com/koshin-ota/koshin/ui", "github.com/koshin-ota/koshin/rollout",
		"github.com/koshin-ota/koshin/sqlite", "github.com/koshin-ota/koshin/postgres",
		"github.com/koshin-ota/koshin/storetest", "github.com/koshin-ota/koshin/webhook",
		"github.com/koshin-ota/koshin/fileblob", "github.com/koshin-ota/koshin/s3",
		"github.com/koshin-ota/koshin/compliance", "github.com/koshin-ota/koshin/cmd/koshin/",
		"github.com/koshin-ota/koshin/trust/repo", "github.com/koshin-ota/koshin/trust/trusttest",
		"github.com/koshin-ota/koshin/agent/agenttest",
	}
)

// TestDeps lists the agent's dependencies per target with `go list -deps`
// (like tailscale's tstest/deptest) and fails on any forbidden package.
func TestDeps(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.goos+"-"+tg.goarch, func(t *testing.T) {
			for _, v := range violations(t, ".", targetEnv(tg.goos, tg.goarch, tg.goarm)) {
				t.Errorf("the agent links %s", v)
			}
		})
	}
}

// The check itself finds server packages where they are linked: the
// operator's binary, which includes the server.
func TestDepsCheckCatchesServer(t *testing.T) {
	if len(violations(t, "../koshin", targetEnv("linux", "amd64", ""))) == 0 {
		t.Fatal("no forbidden package found in cmd/koshin: the check is broken")
	}
}

func violations(t *testing.T, pkg string, env []string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", pkg)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list -deps printed %d packages: not a dependency list", len(deps))
	}
	var bad []string
	for _, dep := range deps {
		if why, ok := forbidden[dep]; ok {
			bad = append(bad, dep+" ("+why+")")
		}
		for _, p := range forbiddenPrefixes {
			if dep == p || strings.HasPrefix(dep, p+"/") || (strings.HasSuffix(p, "/") && strings.HasPrefix(dep, p)) {
				bad = append(bad, dep)
			}
		}
	}
	return bad
}

// TestCrossCompile builds the static binary for every target
// (CGO_ENABLED=0): a dependency that needs cgo, or code that does not
// build on 32-bit ARM, fails here rather than on a device.
func TestCrossCompile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent three times; skipped with -short")
	}
	dir := t.TempDir()
	for _, tg := range targets {
		out := filepath.Join(dir, "koshin-agent-"+tg.goarch)
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
		cmd.Env = targetEnv(tg.goos, tg.goarch, tg.goarm)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s/%s: %v\n%s", tg.goos, tg.goarch, err, b)
		}
	}
}

func targetEnv(goos, goarch, goarm string) []string {
	env := append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if goarm != "" {
		env = append(env, "GOARM="+goarm)
	}
	return env
}
