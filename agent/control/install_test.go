package control_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/agent/bundle"
	"github.com/koshin-ota/koshin/agent/control"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// makeBundle writes a bundle installing the rig's new release, signed for
// the device's current offline nonce (read through the API, as the
// administrator would).
func (f *fixture) makeBundle() []byte {
	f.t.Helper()
	r := f.r
	nonce := f.status().OfflineNonce
	var buf bytes.Buffer
	w, err := bundle.NewWriter(&buf, bundle.Manifest{})
	if err != nil {
		f.t.Fatal(err)
	}
	add := func(name string, data []byte) {
		if err := w.Add(name, data); err != nil {
			f.t.Fatal(err)
		}
	}
	for _, p := range []string{trusttest.RootPath(1), trusttest.RolePath(metadata.TIMESTAMP, 0),
		trusttest.RolePath(metadata.SNAPSHOT, r.Img.Snapshot.Signed.Version), trusttest.RolePath(metadata.TARGETS, r.Img.Targets.Signed.Version)} {
		add(bundle.ImagePath(strings.TrimPrefix(p, "metadata/")), r.Img.File(p))
	}
	add(bundle.SingleInstructionPath, r.Dir.Instruct(r.Img, r.Dev, nonce, r.NewName))
	tp := trusttest.TargetPath(r.NewName, r.Img.Targets.Signed.Targets[r.NewName].Hashes["sha256"])
	add(tp, r.Img.File(tp))
	if err := w.Close(); err != nil {
		f.t.Fatal(err)
	}
	return buf.Bytes()
}

// An allowed non-root user streams a bundle; it installs through the
// engine while the server is unreachable.
func TestInstallBundleThroughAPI(t *testing.T) {
	f := newFixture(t, 40)
	f.r.Server.SetOffline(true)
	data := f.makeBundle()
	f.setCred(control.Cred{UID: 1000})
	res, err := f.client().InstallStream(context.Background(), bytes.NewReader(data))
	if err != nil || !res.Reboot || res.Target != f.r.NewName {
		t.Fatalf("install: %+v, %v", res, err)
	}
	if env := f.r.Env(); env.Slot != "B" || !env.UpgradeAvailable {
		t.Fatalf("bootloader %+v, want a trial of B", env)
	}
	if entries, _ := os.ReadDir(filepath.Join(f.dir, "work")); len(entries) != 0 {
		t.Fatalf("uploaded bundle left behind: %v", entries)
	}
}

// Only root may make the agent open a file by path; a refused bundle
// answers 422 with the trust error.
func TestInstallBundleByPath(t *testing.T) {
	f := newFixture(t, 41)
	data := f.makeBundle()
	data[len(data)-2048] ^= 1 // inside the payload, before the tar trailer
	p := filepath.Join(t.TempDir(), "update.tar")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f.setCred(control.Cred{UID: 1000})
	_, err := f.client().InstallPath(ctx, p)
	wantCode(t, err, http.StatusForbidden)
	f.setCred(control.Cred{UID: 0})
	_, err = f.client().InstallPath(ctx, p)
	wantCode(t, err, http.StatusUnprocessableEntity)
	if !strings.Contains(err.Error(), "mismatch") {
		t.Fatalf("refusal %q does not name the mismatch", err)
	}
	if env := f.r.Env(); env.Slot != "A" || env.UpgradeAvailable {
		t.Fatalf("tampered bundle switched the bootloader: %+v", env)
	}
	_, err = f.client().InstallStream(ctx, strings.NewReader("not a bundle"))
	wantCode(t, err, http.StatusUnprocessableEntity)
}
