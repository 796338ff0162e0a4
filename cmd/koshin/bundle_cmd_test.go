package main

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/agenttest"
	"github.com/koshin-ota/koshin/agent/bundle"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/koshin-ota/koshin/trust/verify"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// bundleSite is the operator's side of an offline install — a director
// workspace with its key file and the image repository's published
// directory — and a simulated device (agenttest rig) provisioned with
// their roots, cut off from the server.
type bundleSite struct {
	t         *testing.T
	r         *agenttest.Rig
	dir       string
	director  string
	published string
}

func newBundleSite(t *testing.T) *bundleSite {
	t.Helper()
	r := agenttest.NewRig(t, 31)
	r.Server.SetOffline(true)
	s := &bundleSite{t: t, r: r, dir: t.TempDir()}
	s.published = filepath.Join(s.dir, "published")
	s.publish()

	// The director as `koshin server init` leaves it: root 1 and an
	// encrypted online targets key file.
	s.director = filepath.Join(s.dir, "director")
	rootKey, _ := keys.Generate(keys.Ed25519)
	targetsKey, _ := keys.Generate(keys.Ed25519)
	if err := os.MkdirAll(s.director, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := keys.WriteKeyFile(filepath.Join(s.director, "targets.key"), targetsKey, []byte(bundlePass), bundleKDF); err != nil {
		t.Fatal(err)
	}
	d, err := repo.InitDirector(s.director, r.Clock.Now(), repo.DirectorOptions{Channel: trust.ChannelRelease,
		RootKeys: []crypto.Signer{rootKey}, Targets: targetsKey})
	if err != nil {
		t.Fatal(err)
	}
	// Provision the device with this director instead of the rig's.
	if err := os.RemoveAll(r.Device.MetaDir); err != nil {
		t.Fatal(err)
	}
	if err := verify.Provision(r.Device.MetaDir, r.Img.TrustedRoot(), d.Root(), trust.ChannelRelease); err != nil {
		t.Fatal(err)
	}
	return s
}

const bundlePass = "correct horse battery staple"

var bundleKDF = keys.KDFParams{Time: 1, MemoryKiB: 8 << 10, Threads: 1}

// publish writes the rig's image repository as `koshin repo publish`
// lays it out.
func (s *bundleSite) publish() {
	img := s.r.Img
	var paths []string
	for v := int64(1); v <= img.Root.Signed.Version; v++ {
		paths = append(paths, trusttest.RootPath(v))
	}
	paths = append(paths, trusttest.RolePath(metadata.TIMESTAMP, 0), trusttest.RolePath(metadata.SNAPSHOT, img.Snapshot.Signed.Version),
		trusttest.RolePath(metadata.TARGETS, img.Targets.Signed.Version))
	for _, name := range []string{s.r.OldName, s.r.NewName} {
		paths = append(paths, trusttest.TargetPath(name, img.Targets.Signed.Targets[name].Hashes["sha256"]))
	}
	for _, p := range paths {
		dst := filepath.Join(s.published, strings.TrimPrefix(p, "metadata/"))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(dst, img.File(p), 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
}

// create runs `koshin bundle create` and returns the bundle's path.
func (s *bundleSite) create(name string, args ...string) (string, error) {
	out := filepath.Join(s.dir, name)
	var stdout, stderr bytes.Buffer
	m := NewMain(&stdout, &stderr)
	m.Now, m.Getenv, m.KDF = s.r.Clock.Now, func(string) string { return "" }, bundleKDF
	m.Passphrase = func(string) ([]byte, error) { return []byte(bundlePass), nil }
	args = append([]string{"bundle", "create", "--director", s.director, "--image", s.published,
		"--release", s.r.NewName, "-o", out}, args...)
	if code := m.Run(args); code != 0 {
		return "", fmt.Errorf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "install before") {
		s.t.Fatalf("output %q does not say until when the bundle installs", stdout.String())
	}
	return out, nil
}

func (s *bundleSite) mustCreate(name string, args ...string) string {
	s.t.Helper()
	p, err := s.create(name, args...)
	if err != nil {
		s.t.Fatal(err)
	}
	return p
}

// install installs a bundle file through the agent's offline path.
func (s *bundleSite) install(e *agent.Engine, path string) (bundle.Result, error) {
	s.t.Helper()
	b, err := bundle.Open(path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer b.Close()
	inst := &bundle.Installer{Engine: e, Device: s.r.Dev, TrustDir: s.r.Device.MetaDir,
		Nonces: s.nonces(), Now: s.r.Clock.Now}
	return inst.Install(context.Background(), b)
}

func (s *bundleSite) nonces() *bundle.Nonces { return &bundle.Nonces{FS: s.r.Device.State} }

// A bundle made by `koshin bundle create` for the device's ID and offline
// nonce installs through the agent's offline path — trial boot, commit —
// while bundles for another device or for another nonce are refused and
// switch nothing.
func TestBundleCreateInstallsOffline(t *testing.T) {
	s := newBundleSite(t)
	e := s.r.Boot()
	nonce, err := s.nonces().Current()
	if err != nil {
		t.Fatal(err)
	}
	id := s.r.Dev.ID

	for _, tc := range []struct {
		name string
		args []string
		want error
	}{
		{"another device", []string{"--device", "dev-0002", "--nonce", nonce}, trust.ErrNoInstruction},
		{"another nonce", []string{"--device", id, "--nonce", strings.Repeat("5a", 16)}, trust.ErrStaleNonce},
	} {
		_, err := s.install(e, s.mustCreate(tc.name+".koshin", tc.args...))
		if !errors.Is(err, tc.want) {
			t.Fatalf("bundle for %s: %v, want %v", tc.name, err, tc.want)
		}
		if env := s.r.Env(); env.Slot != "A" || env.UpgradeAvailable || s.r.Reboots != 0 {
			t.Fatalf("bundle for %s switched the bootloader: %+v", tc.name, env)
		}
	}

	csv := filepath.Join(s.dir, "site.csv")
	body := fmt.Sprintf("device_id,nonce,hardware_id\ndev-0002,%s,%s\n%s,%s\n", strings.Repeat("0f", 16), agenttest.RigHardware, id, nonce)
	if err := os.WriteFile(csv, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := s.install(e, s.mustCreate("site.koshin", "--devices", csv))
	if err != nil || !res.Reboot || res.Target != s.r.NewName || res.Version != "2.0" {
		t.Fatalf("install: %+v, %v", res, err)
	}
	e.Close()
	e = s.r.Boot() // the trial boot: health check, commit
	st, err := e.Status(context.Background())
	if err != nil || st.Tx == nil || st.Tx.State != agent.StateCommitted || st.Installed[agenttest.RigComponent].Target != s.r.NewName {
		t.Fatalf("after the trial boot: %+v, %v", st, err)
	}
}

// The command refuses what could never install: an unknown release, a
// device list without nonces, a published repository that does not verify
// from the trusted root.
func TestBundleCreateRefuses(t *testing.T) {
	s := newBundleSite(t)
	nonce := strings.Repeat("ab", 16)
	if _, err := s.create("x.koshin", "--device", "dev-0001"); err == nil || !strings.Contains(err.Error(), "exit 2") {
		t.Fatalf("no nonce: %v, want a usage error", err)
	}
	csv := filepath.Join(s.dir, "bad.csv")
	os.WriteFile(csv, []byte("dev-0001\n"), 0o600)
	if _, err := s.create("x.koshin", "--devices", csv); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("CSV without nonces: %v", err)
	}
	if _, err := s.create("x.koshin", "--device", "dev-0001", "--nonce", nonce, "--release", "nope.img"); err == nil ||
		!strings.Contains(err.Error(), "nope.img") {
		t.Fatalf("unknown release: %v", err)
	}
	other := trusttest.NewRepo(t, trusttest.Options{})
	root := filepath.Join(s.dir, "other-root.json")
	os.WriteFile(root, other.TrustedRoot(), 0o600)
	if _, err := s.create("x.koshin", "--device", "dev-0001", "--nonce", nonce, "--image-root", root); err == nil {
		t.Fatal("bundled a repository that does not verify from the given root")
	}
	if _, err := os.Stat(filepath.Join(s.dir, "x.koshin")); !os.IsNotExist(err) {
		t.Fatalf("a refused bundle left a file behind: %v", err)
	}
}
