package bundle_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/agenttest"
	"github.com/koshin-ota/koshin/agent/bundle"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// contents returns a bundle's files for installing the rig's new release
// on its device, with an instruction echoing nonce.
func contents(r *agenttest.Rig, nonce string) map[string][]byte {
	files := map[string][]byte{}
	meta := func(p string) {
		files[bundle.ImagePath(strings.TrimPrefix(p, "metadata/"))] = r.Img.File(p)
	}
	for v := int64(1); v <= r.Img.Root.Signed.Version; v++ {
		meta(trusttest.RootPath(v))
	}
	meta(trusttest.RolePath(metadata.TIMESTAMP, 0))
	meta(trusttest.RolePath(metadata.SNAPSHOT, r.Img.Snapshot.Signed.Version))
	meta(trusttest.RolePath(metadata.TARGETS, r.Img.Targets.Signed.Version))
	tf := r.Img.Targets.Signed.Targets[r.NewName]
	p := trusttest.TargetPath(r.NewName, tf.Hashes["sha256"])
	files[p] = r.Img.File(p)
	files[bundle.SingleInstructionPath] = r.Dir.Instruct(r.Img, r.Dev, nonce, r.NewName)
	return files
}

// write stores files as a bundle and opens it.
func write(t *testing.T, files map[string][]byte) *bundle.Bundle {
	t.Helper()
	var buf bytes.Buffer
	w, err := bundle.NewWriter(&buf, bundle.Manifest{Description: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := w.Add(name, files[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "update.koshin")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func installer(r *agenttest.Rig, e *agent.Engine) *bundle.Installer {
	return &bundle.Installer{Engine: e, Device: r.Dev, TrustDir: r.Device.MetaDir,
		Nonces: &bundle.Nonces{FS: r.Device.State}, Now: r.Clock.Now}
}

func events(srv *agenttest.Server) []deviceapi.EventType {
	var out []deviceapi.EventType
	for _, e := range srv.Received() {
		out = append(out, e.Type)
	}
	return out
}

// A bundle signed for this device and its current offline nonce installs
// through the engine with the server unreachable: trial boot, health
// check, commit. The reports wait in the outbox until the server is back,
// and the same bundle cannot install a second time.
func TestInstallBundleOffline(t *testing.T) {
	ctx := context.Background()
	r := agenttest.NewRig(t, 1)
	r.Server.SetOffline(true)
	e := r.Boot()
	inst := installer(r, e)
	nonce, err := inst.Nonces.Current()
	if err != nil {
		t.Fatal(err)
	}
	b := write(t, contents(r, nonce))
	res, err := inst.Install(ctx, b)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	if !res.Reboot || res.Target != r.NewName || res.Version != "2.0" || r.Reboots != 1 {
		t.Fatalf("result %+v after %d reboot requests, want a reboot into %s", res, r.Reboots, r.NewName)
	}
	if env := r.Env(); env.Slot != "B" || !env.UpgradeAvailable {
		t.Fatalf("bootloader %+v, want a trial of slot B", env)
	}
	again, _ := inst.Nonces.Current()
	if again == nonce {
		t.Fatal("offline nonce not replaced after its instruction was used")
	}
	if _, err := inst.Install(ctx, write(t, contents(r, again))); !errors.Is(err, agent.ErrInProgress) {
		t.Fatalf("install while rebooting into the first: %v, want ErrInProgress", err)
	}

	e.Close()
	e = r.Boot() // the trial boot: health check and commit, still offline
	st, err := e.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Tx == nil || st.Tx.State != agent.StateCommitted || st.Installed[agenttest.RigComponent].Target != r.NewName {
		t.Fatalf("status %+v, want %s committed", st, r.NewName)
	}
	if st.Outbox == 0 || len(r.Server.Received()) != 0 {
		t.Fatalf("outbox %d, server got %v: reports should wait for the server", st.Outbox, events(r.Server))
	}
	r.Server.SetOffline(false)
	if _, err := e.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if r.Server.Count(deviceapi.EventCommitted) != 1 {
		t.Fatalf("server got %v, want the queued commit report", events(r.Server))
	}

	// The same bundle again: its nonce is spent.
	_, err = installer(r, e).Install(ctx, b)
	if !errors.Is(err, trust.ErrStaleNonce) {
		t.Fatalf("second install of the same bundle: %v, want ErrStaleNonce", err)
	}
}

// Tampered or misdirected bundles are refused with the trust error that
// names the defect, reported to the server as invalid updates, and nothing
// is switched.
func TestTamperedBundleRejected(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(r *agenttest.Rig, files map[string][]byte, nonce string)
		want   error
	}{
		{"payload byte flipped", func(r *agenttest.Rig, files map[string][]byte, _ string) {
			for name, data := range files {
				if strings.HasPrefix(name, "targets/") {
					data[len(data)/2] ^= 0x01
				}
			}
		}, trust.ErrMismatch},
		{"timestamp edited", func(r *agenttest.Rig, files map[string][]byte, _ string) {
			p := bundle.ImagePath("timestamp.json")
			files[p] = bytes.Replace(files[p], []byte(`"expires":"2030`), []byte(`"expires":"2039`), 1)
		}, trust.ErrThreshold},
		{"instruction edited", func(r *agenttest.Rig, files map[string][]byte, _ string) {
			p := bundle.SingleInstructionPath
			files[p] = bytes.Replace(files[p], []byte(`"expires":"2030`), []byte(`"expires":"2039`), 1)
		}, trust.ErrThreshold},
		{"instruction for another device", func(r *agenttest.Rig, files map[string][]byte, nonce string) {
			other := r.Dev
			other.ID = "dev-0002"
			files[bundle.SingleInstructionPath] = r.Dir.Instruct(r.Img, other, nonce, r.NewName)
		}, trust.ErrWrongDevice},
		{"stale nonce", func(r *agenttest.Rig, files map[string][]byte, _ string) {
			files[bundle.SingleInstructionPath] = r.Dir.Instruct(r.Img, r.Dev, "0123456789abcdef0123456789abcdef", r.NewName)
		}, trust.ErrStaleNonce},
		{"instruction signed by another key", func(r *agenttest.Rig, files map[string][]byte, nonce string) {
			evil := trusttest.NewDirector(t, trusttest.Options{})
			files[bundle.SingleInstructionPath] = evil.Instruct(r.Img, r.Dev, nonce, r.NewName)
		}, trust.ErrThreshold},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r := agenttest.NewRig(t, 2)
			e := r.Boot()
			inst := installer(r, e)
			nonce, _ := inst.Nonces.Current()
			files := contents(r, nonce)
			tc.mutate(r, files, nonce)
			_, err := inst.Install(ctx, write(t, files))
			if !errors.Is(err, tc.want) {
				t.Fatalf("install: %v, want %v", err, tc.want)
			}
			if env := r.Env(); env.Slot != "A" || env.UpgradeAvailable || r.Reboots != 0 {
				t.Fatalf("bootloader %+v after %d reboots: a rejected bundle switched something", env, r.Reboots)
			}
			st, _ := e.Status(ctx)
			if st.Installed[agenttest.RigComponent].Target == r.NewName {
				t.Fatal("rejected release recorded as installed")
			}
			if n := r.Server.Count(deviceapi.EventRejected); n != 1 {
				t.Fatalf("server got %v, want one rejected-invalid-update report", events(r.Server))
			}
		})
	}
}

// A fleet bundle carries one instruction per device; each device picks its
// own.
func TestFleetBundlePicksOwnInstruction(t *testing.T) {
	ctx := context.Background()
	r := agenttest.NewRig(t, 3)
	e := r.Boot()
	inst := installer(r, e)
	nonce, _ := inst.Nonces.Current()
	files := contents(r, nonce)
	delete(files, bundle.SingleInstructionPath)
	other := r.Dev
	other.ID = "dev-0002"
	files[bundle.InstructionPath(other.ID)] = r.Dir.Instruct(r.Img, other, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", r.NewName)
	b := write(t, maps.Clone(files))
	if _, err := inst.Install(ctx, b); !errors.Is(err, trust.ErrNoInstruction) {
		t.Fatalf("bundle without this device: %v, want ErrNoInstruction", err)
	}
	files[bundle.InstructionPath(r.Dev.ID)] = r.Dir.Instruct(r.Img, r.Dev, nonce, r.NewName)
	res, err := inst.Install(ctx, write(t, files))
	if err != nil || !res.Reboot {
		t.Fatalf("install from a fleet bundle: %+v, %v", res, err)
	}
}
