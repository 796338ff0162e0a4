package main

import (
	"bytes"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/advisory"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/encryption"
	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/spf13/cobra"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

var cliNow = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// A release's security documents, from package advisory's tests.
const (
	advisoryCSAF = "../../advisory/testdata/csaf-ksa-2026-001.json"
	advisorySBOM = "../../advisory/testdata/sbom-c1-1.4.0.cdx.json"
)

// cli runs koshin commands in process against one temporary workspace.
type cli struct {
	t                 *testing.T
	dir, repo, keyDir string
}

func newCLI(t *testing.T) *cli {
	dir := t.TempDir()
	c := &cli{t: t, dir: dir, repo: filepath.Join(dir, "repo"), keyDir: filepath.Join(dir, "keys")}
	if err := os.Mkdir(c.keyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *cli) main(stdout, stderr io.Writer) *Main {
	m := NewMain(stdout, stderr)
	m.Now = func() time.Time { return cliNow }
	m.Getenv = func(string) string { return "" }
	m.Passphrase = func(string) ([]byte, error) { return []byte("correct horse battery staple"), nil }
	// The cheapest Argon2id cost keys accepts: tests need no brute-force
	// resistance, and the default costs 64 MiB per key operation.
	m.KDF = keys.KDFParams{Time: 1, MemoryKiB: 8 << 10, Threads: 1}
	return m
}

// exec runs a command line and returns stdout, stderr and the exit status.
func (c *cli) exec(args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := c.main(&out, &errOut).Run(append([]string{"--repo", c.repo}, args...))
	return out.String(), errOut.String(), code
}

// ok runs a command that must succeed.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.exec(args...)
	if code != 0 {
		c.t.Fatalf("koshin %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (c *cli) key(name string) string { return filepath.Join(c.keyDir, name+".key") }

// setup creates a release repository with generated keys for every role.
func (c *cli) setup() {
	c.ok("repo", "init", "--channel", "release")
	c.ok("repo", "key", "add", "--role", "root", "--generate", "--out", c.key("root"))
	c.ok("repo", "key", "add", "--role", "targets", "--generate", "--out", c.key("targets"), "--algorithm", "ecdsa-p256")
	c.ok("repo", "key", "add", "--role", "snapshot", "--generate", "--out", c.key("snapshot"))
	c.ok("repo", "key", "add", "--role", "timestamp", "--generate", "--out", c.key("timestamp"))
	c.ok("repo", "sign", "--role", "root", "--key", c.key("root"))
	c.ok("repo", "sign", "--role", "targets", "--key", c.key("targets"))
}

func (c *cli) write(name string, data []byte) string {
	p := filepath.Join(c.dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// The documented first-release flow: init → keys → release add → sign
// (here, offline) → publish, and a device-side TUF walk of the result.
func TestCLIReleaseFlow(t *testing.T) {
	c := newCLI(t)
	c.setup()
	c.ok("repo", "key", "threshold", "--role", "targets", "1")
	out, errOut, code := c.exec("repo", "publish", "--dir", filepath.Join(c.dir, "pub"))
	if code != 1 || !strings.Contains(errOut, "root 1 has 0 of 1 signatures") {
		t.Fatalf("publish before root is signed: %d\n%s%s", code, out, errOut)
	}
	c.ok("repo", "sign", "--role", "root", "--key", c.key("root")) // the edit dropped root's signature
	if out := c.ok("repo", "key", "list"); strings.Count(out, "\n") != 5 || !strings.Contains(out, "ecdsa-sha2-nistp256") {
		t.Fatalf("key list:\n%s", out)
	}
	image := c.write("rootfs.img", bytes.Repeat([]byte("image "), 10000))
	c.ok("release", "add", image, "--name", "rootfs-1.img", "--hardware-id", "board-a", "--hardware-id", "board-b",
		"--component", "rootfs", "--counter", "1", "--version", "1.0.0", "--advisory-id", "CVE-2026-0001",
		"--support-end", "2031-12-31", "--advisory", advisoryCSAF, "--sbom", advisorySBOM)
	// Documents that do not validate are refused before anything is staged.
	if _, errOut, code := c.exec("release", "add", image, "--name", "rootfs-x.img", "--hardware-id", "board-a", "--component", "rootfs",
		"--counter", "2", "--version", "1.0.1", "--sbom", c.write("sbom.json", []byte(`{"bomFormat":"CycloneDX"}`))); code != 1 || !strings.Contains(errOut, "specVersion") {
		t.Fatalf("invalid SBOM: exit %d %s", code, errOut)
	}

	unsigned := filepath.Join(c.dir, "targets-unsigned.json")
	sig := filepath.Join(c.dir, "targets.sig")
	c.ok("repo", "sign", "--export", "targets", "--out", unsigned)
	if out := c.ok("repo", "sign-offline", "--key", c.key("targets"), "--in", unsigned, "--out", sig); !strings.Contains(out, "+ rootfs-1.img: component rootfs, counter 1") {
		t.Fatalf("sign-offline did not show what it signs:\n%s", out)
	}
	c.ok("repo", "sign", "--import", sig)
	if out := c.ok("repo", "status"); !strings.Contains(out, "ready to commit") {
		t.Fatalf("status:\n%s", out)
	}
	out = filepath.Join(c.dir, "pub")
	c.ok("repo", "publish", "--dir", out)

	tm := walkPublished(t, out, 1)
	tf := tm.Targets["targets"].Signed.Targets["rootfs-1.img"]
	custom, err := trust.ParseTargetCustom(tf.Custom)
	if err != nil {
		t.Fatal(err)
	}
	if custom.ReleaseCounter != 1 || !custom.Security || custom.SBOMSHA256 == "" || custom.Channel != trust.ChannelRelease ||
		!slices.Equal(custom.Advisories, []string{"KSA-2026-001", "CVE-2026-1234", "CVE-2026-1235", "CVE-2026-0001"}) {
		t.Fatalf("custom = %+v", custom)
	}
	// The documents are published next to the payloads, under their
	// signed digests.
	for digest, suffix := range map[string]string{custom.AdvisorySHA256: repo.DocumentAdvisory, custom.SBOMSHA256: repo.DocumentSBOM} {
		b, err := os.ReadFile(filepath.Join(out, repo.DocumentPath(digest, suffix)))
		if err != nil || advisory.VerifyDigest(b, digest) != nil {
			t.Errorf("published %s: %v", suffix, err)
		}
	}
	payload, err := os.ReadFile(filepath.Join(out, "targets", hex.EncodeToString(tf.Hashes["sha256"])+".rootfs-1.img"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tf.VerifyLengthHashes(payload); err != nil {
		t.Fatal(err)
	}
	if list := c.ok("release", "list"); !strings.Contains(list, "rootfs-1.img") || !strings.Contains(list, "signed") {
		t.Fatalf("release list:\n%s", list)
	}

	// Revocation raises the floor (CCDS UPC05); timestamp renews freshness.
	c.ok("release", "revoke", "rootfs-1.img")
	c.ok("repo", "sign", "--role", "targets", "--key", c.key("targets"))
	c.ok("repo", "publish", "--dir", out)
	tm = walkPublished(t, out, 1)
	floors, _ := trust.Floors(&tm.Targets["targets"].Signed)
	if floors[trust.FloorKey("board-a", "rootfs")] != 2 || floors[trust.FloorKey("board-b", "rootfs")] != 2 {
		t.Fatalf("floors = %v", floors)
	}
	c.ok("repo", "timestamp", "--dir", out)
	walkPublished(t, out, 1)
}

// Root rotation through the CLI: root 2 is published next to root 1 and a
// device walks from 1 to 2.
func TestCLIRotateRoot(t *testing.T) {
	c := newCLI(t)
	c.setup()
	out := filepath.Join(c.dir, "pub")
	c.ok("repo", "publish", "--dir", out)
	c.ok("repo", "key", "generate", "--out", c.key("root2")) // also writes root2.key.pub
	c.ok("repo", "rotate-root", "--keys", "root="+c.key("root2")+".pub", "--key", c.key("root"), "--key", c.key("root2"))
	c.ok("repo", "publish", "--dir", out)
	walkPublished(t, out, 2)
	if _, _, code := c.exec("repo", "sign", "--role", "root", "--key", c.key("root")); code == 0 {
		t.Fatal("signing with nothing staged succeeded")
	}
}

// --encrypt stages the ciphertext; the content key in the key file decrypts
// the published payload back to the original.
func TestCLIEncryptedRelease(t *testing.T) {
	c := newCLI(t)
	c.setup()
	plain := bytes.Repeat([]byte("secret firmware "), 9000)
	keyFile := filepath.Join(c.dir, "fw.key")
	c.ok("release", "add", c.write("fw.bin", plain), "--hardware-id", "board-a", "--component", "app", "--counter", "3",
		"--version", "3", "--encrypt", "--content-key-out", keyFile)
	c.ok("repo", "sign", "--role", "targets", "--key", c.key("targets"))
	out := filepath.Join(c.dir, "pub")
	c.ok("repo", "publish", "--dir", out)

	tm := walkPublished(t, out, 1)
	tf := tm.Targets["targets"].Signed.Targets["fw.bin"]
	custom, err := trust.ParseTargetCustom(tf.Custom)
	if err != nil || custom.Encryption != trust.EncryptionScheme || custom.PlaintextLength != int64(len(plain)) {
		t.Fatalf("custom = %+v (%v)", custom, err)
	}
	hexKey, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(hexKey)))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(out, "targets", hex.EncodeToString(tf.Hashes["sha256"])+".fw.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := encryption.NewReader(f, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rd)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("decrypted payload differs (err %v)", err)
	}
	if fi, _ := os.Stat(keyFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("content key mode %v", fi.Mode())
	}
}

func TestCLIRefusals(t *testing.T) {
	c := newCLI(t)
	c.setup()
	image := c.write("x.img", []byte("x"))
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"repo", "sign"}, 2, "give --role and --key"},
		{[]string{"repo", "init", "--channel", "release"}, 1, "already"},
		{[]string{"repo", "sign", "--role", "root", "--key", c.key("snapshot")}, 1, "may not sign root"},
		{[]string{"repo", "init"}, 2, "required flag"},
		{[]string{"release", "revoke"}, 2, "accepts 1 arg"},
		{[]string{"release", "add", image, "--hardware-id", "b", "--component", "c", "--counter", "0", "--version", "1"}, 1, "release_counter"},
		{[]string{"repo", "key", "add", "--role", "timestamp", "--key", c.key("root")}, 1, "separate keys"},
		{[]string{"repo", "init", "--channel", "dev", "--threshold", "root"}, 2, "ROLE=VALUE"},
		{[]string{"repo", "status", "--bogus"}, 2, "unknown flag"},
	}
	for _, tt := range tests {
		_, errOut, code := c.exec(tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.msg) {
			t.Errorf("koshin %s: exit %d %q, want %d and %q", strings.Join(tt.args, " "), code, errOut, tt.code, tt.msg)
		}
	}
}

// Every command documents itself.
func TestCLIHelp(t *testing.T) {
	m := NewMain(io.Discard, io.Discard)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Short == "" {
			t.Errorf("%s has no short help", c.CommandPath())
		}
		if c.Runnable() && c.Long == "" && c.HasAvailableFlags() && len(c.Commands()) == 0 && !strings.Contains(c.CommandPath(), "list") && !strings.Contains(c.CommandPath(), "discard") {
			t.Errorf("%s has flags but no long help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	root := m.rootCmd()
	for _, sub := range root.Commands() {
		if sub.Name() == "repo" || sub.Name() == "release" {
			walk(sub)
		}
	}
	var out bytes.Buffer
	if code := NewMain(&out, &out).Run([]string{"repo", "publish", "--help"}); code != 0 || !strings.Contains(out.String(), "consistent") {
		t.Fatalf("help: %d\n%s", code, out.String())
	}
}

// walkPublished verifies a published tree as a device does, with go-tuf.
func walkPublished(t *testing.T, out string, roots int) *trustedmetadata.TrustedMetadata {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tm, err := trustedmetadata.New(read("1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	tm.RefTime = cliNow
	steps := []func() error{}
	for v := 2; v <= roots; v++ {
		steps = append(steps, func() error { _, err := tm.UpdateRoot(read(versioned(int64(v), "root"))); return err })
	}
	steps = append(steps,
		func() error { _, err := tm.UpdateTimestamp(read("timestamp.json")); return err },
		func() error {
			_, err := tm.UpdateSnapshot(read(versioned(tm.Timestamp.Signed.Meta["snapshot.json"].Version, "snapshot")), false)
			return err
		},
		func() error {
			_, err := tm.UpdateTargets(read(versioned(tm.Snapshot.Signed.Meta["targets.json"].Version, "targets")))
			return err
		},
	)
	for _, s := range steps {
		if err := s(); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := trust.RootChannel(&tm.Root.Signed); err != nil || c != trust.ChannelRelease {
		t.Fatalf("root channel %q %v", c, err)
	}
	return tm
}

func versioned(v int64, role string) string {
	return strconv.FormatInt(v, 10) + "." + role + ".json"
}

func TestAbsRef(t *testing.T) {
	wd, _ := os.Getwd()
	for in, want := range map[string]string{
		"keys/t.key":                            filepath.Join(wd, "keys/t.key"),
		"file:keys/t.key":                       filepath.Join(wd, "keys/t.key"),
		"/abs/t.key":                            "/abs/t.key",
		"file:///abs/t.key":                     "file:///abs/t.key",
		"pkcs11:token=a;object=b?pin-source=/p": "pkcs11:token=a;object=b?pin-source=/p",
	} {
		got, err := absRef(in)
		if err != nil || got != want {
			t.Errorf("absRef(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
