package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// client runs the CLI in-process against a trusttest repository served on
// 127.0.0.1, as the conformance suite would run the binary.
type client struct {
	t                        *testing.T
	repo                     *trusttest.Repo
	clock                    *trusttest.Clock
	base, metaDir, targetDir string
	stderr                   bytes.Buffer
}

const target = "dir/file.txt"

var content = []byte("koshin conformance payload\n")

func newClient(t *testing.T, opt trusttest.Options) *client {
	t.Helper()
	opt.Channel = trusttest.NoChannel // like the suite's generic repositories
	c := &client{t: t, repo: trusttest.NewRepo(t, opt), clock: trusttest.NewClock(trusttest.Epoch),
		metaDir: t.TempDir(), targetDir: t.TempDir()}
	c.repo.AddTarget(target, content, nil)
	c.repo.Publish()
	c.base = c.repo.Serve()
	rootFile := filepath.Join(t.TempDir(), "root.json")
	if err := os.WriteFile(rootFile, c.repo.TrustedRoot(), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := c.run("--metadata-dir", c.metaDir, "init", rootFile); code != 0 {
		t.Fatalf("init exit %d: %s", code, c.stderr.String())
	}
	return c
}

func (c *client) run(args ...string) int {
	m := &Main{Now: c.clock.Now, Stdout: &bytes.Buffer{}, Stderr: &c.stderr}
	return m.Run(context.Background(), args)
}

func (c *client) refresh() int {
	return c.run("--metadata-url", c.base+"/metadata", "--metadata-dir", c.metaDir, "refresh")
}

func (c *client) download(name string) int {
	return c.run("--metadata-url", c.base+"/metadata", "--metadata-dir", c.metaDir,
		"--target-name", name, "--target-dir", c.targetDir, "--target-base-url", c.base+"/targets", "download")
}

func (c *client) downloaded() []string {
	entries, _ := os.ReadDir(c.targetDir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestInitRefreshDownload(t *testing.T) {
	c := newClient(t, trusttest.Options{})
	if got, _ := os.ReadFile(filepath.Join(c.metaDir, "root.json")); !bytes.Equal(got, c.repo.TrustedRoot()) {
		t.Fatal("init did not store the trusted root")
	}
	if code := c.refresh(); code != 0 {
		t.Fatalf("refresh exit %d: %s", code, c.stderr.String())
	}
	for _, role := range []string{"root", "timestamp", "snapshot", "targets"} {
		if _, err := os.Stat(filepath.Join(c.metaDir, role+".json")); err != nil {
			t.Errorf("%s not persisted: %v", role, err)
		}
	}
	if code := c.download(target); code != 0 {
		t.Fatalf("download exit %d: %s", code, c.stderr.String())
	}
	got, err := os.ReadFile(filepath.Join(c.targetDir, "dir%2Ffile.txt"))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("downloaded %q, %v", got, err)
	}
	// A second download finds the verified file and fetches no payload.
	c.repo.Requests()
	if code := c.download(target); code != 0 {
		t.Fatalf("second download exit %d: %s", code, c.stderr.String())
	}
	for _, p := range c.repo.Requests() {
		if strings.HasPrefix(p, "targets/") {
			t.Errorf("cached target fetched again: %s", p)
		}
	}
}

// The client exits 1 on every attack and keeps nothing unverified.
func TestAttacksExitOne(t *testing.T) {
	tests := []struct {
		name   string
		opt    trusttest.Options
		attack func(c *client)
		run    func(c *client) int
	}{
		{"expired timestamp", trusttest.Options{}, func(c *client) {
			c.clock.Advance(trusttest.TimestampExpiry + time.Second)
		}, (*client).refresh},
		{"timestamp rollback", trusttest.Options{}, func(c *client) {
			p := trusttest.RolePath(metadata.TIMESTAMP, 0)
			old := c.repo.File(p)
			c.repo.Publish()
			if code := c.refresh(); code != 0 {
				c.t.Fatalf("refresh exit %d: %s", code, c.stderr.String())
			}
			c.repo.SetFile(p, old)
		}, (*client).refresh},
		{"tampered target", trusttest.Options{}, func(c *client) {
			tf := c.repo.Targets.Signed.Targets[target]
			evil := bytes.Clone(content)
			evil[0] ^= 1
			c.repo.SetFile(trusttest.TargetPath(target, tf.Hashes["sha256"]), evil)
		}, func(c *client) int { return c.download(target) }},
		{"target longer than signed", trusttest.Options{}, func(c *client) {
			tf := c.repo.Targets.Signed.Targets[target]
			c.repo.SetFile(trusttest.TargetPath(target, tf.Hashes["sha256"]), append(bytes.Clone(content), "more"...))
		}, func(c *client) int { return c.download(target) }},
		{"k-1 targets signatures", trusttest.Options{Threshold: 2}, func(c *client) {
			c.repo.Signers[metadata.TARGETS] = c.repo.Signers[metadata.TARGETS][:1]
			c.repo.Publish()
		}, (*client).refresh},
		{"missing target", trusttest.Options{}, func(c *client) {}, func(c *client) int { return c.download("nope") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, tt.opt)
			tt.attack(c)
			if code := tt.run(c); code != 1 {
				t.Fatalf("exit %d, want 1", code)
			}
			if got := c.downloaded(); len(got) != 0 {
				t.Fatalf("target dir holds %v after a refused download", got)
			}
		})
	}
}

func TestUsageExitOne(t *testing.T) {
	c := newClient(t, trusttest.Options{})
	for _, args := range [][]string{
		{},
		{"refresh"},
		{"--metadata-dir", c.metaDir, "refresh"},
		{"--metadata-dir", c.metaDir, "init"},
		{"--metadata-dir", c.metaDir, "--metadata-url", c.base, "download"},
		{"--metadata-dir", c.metaDir, "frobnicate"},
		{"--no-such-flag"},
		{"--metadata-dir", c.metaDir, "init", filepath.Join(c.metaDir, "absent.json")},
	} {
		if code := c.run(args...); code != 1 {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
	}
	if code := c.run("--metadata-dir", c.metaDir, "--channel", "release", "--metadata-url", c.base+"/metadata", "refresh"); code != 1 {
		t.Error("--channel release accepted an unlabelled root")
	}
}
