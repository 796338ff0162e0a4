package control_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/koshin-ota/koshin/agent/agenttest"
	"github.com/koshin-ota/koshin/agent/control"
	"github.com/koshin-ota/koshin/agent/identity"
	"github.com/koshin-ota/koshin/deviceapi"
)

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A factory reset erases user data and keys (the data key first), keeps
// the installed software, the trusted roots and the anti-rollback counter,
// rotates the identity, and says exactly what it deleted (EN 303 645
// 5.11-1/5.11-4, CCDS HLC06, STS08).
func TestFactoryReset(t *testing.T) {
	f := newFixture(t, 30)
	ctx := context.Background()
	writeFile(t, filepath.Join(f.dataDir, "photos", "a.jpg"), "12345")
	writeFile(t, filepath.Join(f.dataDir, "photos", "b.jpg"), "678")
	writeFile(t, filepath.Join(f.dataDir, "wifi.conf"), "psk=secret")
	os.Symlink("/etc/hostname", filepath.Join(f.dataDir, "link"))
	writeFile(t, f.dataKey, "data partition key")
	before, _ := f.ids.Load()
	c := f.client()
	if _, err := c.UpdateSettings(ctx, control.SettingsPatch{Automatic: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	oldNonce := f.status().OfflineNonce
	f.poll() // manual mode: pending, and the director's instruction is stored
	instr := filepath.Join(f.r.Device.MetaDir, "director", "targets.json")
	if _, err := os.Stat(instr); err != nil {
		t.Fatalf("no stored instruction to erase: %v", err)
	}

	res, err := c.FactoryReset(ctx)
	if err != nil {
		t.Fatal(err)
	}
	deleted := map[string]control.Deletion{}
	var order []string
	for _, d := range res.Deleted {
		deleted[d.Path] = d
		order = append(order, d.Path)
	}
	if order[0] != f.dataKey {
		t.Fatalf("deleted %v: the data key must go first (crypto-erase)", order)
	}
	if d := deleted[filepath.Join(f.dataDir, "photos")]; d.Files != 2 || d.Bytes != 8 {
		t.Fatalf("photos deletion %+v, want 2 files of 8 bytes", d)
	}
	for _, p := range []string{filepath.Join(f.dataDir, "wifi.conf"), filepath.Join(f.dataDir, "link"), instr,
		filepath.Join(f.ids.Dir, identity.KeyFile), filepath.Join(f.ids.Dir, identity.EncryptionKeyFile)} {
		if _, ok := deleted[p]; !ok {
			t.Errorf("%s not in the confirmation %v", p, order)
		}
		if _, err := os.Lstat(p); filepath.Dir(p) != f.ids.Dir && !os.IsNotExist(err) {
			t.Errorf("%s still exists", p) // the key files exist again, with the new keys
		}
	}
	if _, err := os.Stat("/etc/hostname"); err != nil && !os.IsNotExist(err) {
		t.Errorf("symlink target touched: %v", err)
	}
	if entries, _ := os.ReadDir(f.dataDir); len(entries) != 0 {
		t.Fatalf("data directory still holds %v", entries)
	}

	after, err := f.ids.Load()
	if err != nil || after.ID == before.ID || after.ID != res.DeviceID || !res.EnrollAgain || after.Enrolled() {
		t.Fatalf("identity after reset %v (was %s), result %+v: want a new, unenrolled identity", after, before.ID, res)
	}
	// Kept: software, roots, counter.
	slot, err := f.r.Device.Slots.Slot("A")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := slot.Reader()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.HasPrefix(a, f.r.OldImage) {
		t.Fatal("slot A changed")
	}
	if env := f.r.Env(); env.Slot != "A" || env.UpgradeAvailable {
		t.Fatalf("bootloader changed: %+v", env)
	}
	for _, p := range []string{"image/root.json", "director/root.json"} {
		if _, err := os.Stat(filepath.Join(f.r.Device.MetaDir, p)); err != nil {
			t.Fatalf("trusted root %s not kept: %v", p, err)
		}
	}
	if n, err := f.r.Device.Counter().Get(agenttest.RigComponent); err != nil || n != 1 {
		t.Fatalf("anti-rollback counter %d, %v; want 1 kept", n, err)
	}
	if len(res.Kept) == 0 || !slices.ContainsFunc(res.Kept, func(s string) bool { return bytes.Contains([]byte(s), []byte("rootfs 1.0")) }) {
		t.Fatalf("kept %v, want the installed software listed", res.Kept)
	}

	// Local state back to the factory: old token refused, defaults,
	// no decision, a new offline nonce.
	_, err = c.Status(ctx)
	wantCode(t, err, http.StatusUnauthorized)
	st := f.status()
	if st.Settings != control.DefaultSettings() || st.Pending != nil || st.OfflineNonce == oldNonce {
		t.Fatalf("status after reset: settings %+v, pending %+v, nonce kept %v", st.Settings, st.Pending, st.OfflineNonce == oldNonce)
	}
	if f.count(deviceapi.EventFactoryReset) != 1 {
		t.Fatalf("server got %v, want a factory-reset report under the old identity", f.events())
	}
	if st.Outbox != 0 {
		t.Fatalf("outbox holds %d reports of the old identity", st.Outbox)
	}
}

func TestResetNeedsConfirmation(t *testing.T) {
	f := newFixture(t, 31)
	writeFile(t, filepath.Join(f.dataDir, "keep"), "x")
	// A request without the confirmation phrase deletes nothing.
	err := f.post("/v1/reset", `{"confirm":"yes"}`)
	wantCode(t, err, http.StatusBadRequest)
	if _, err := os.Stat(filepath.Join(f.dataDir, "keep")); err != nil {
		t.Fatal("data deleted without confirmation")
	}
}

// A reset interrupted by a power cut is finished at the next start.
func TestResumeInterruptedReset(t *testing.T) {
	f := newFixture(t, 32)
	writeFile(t, filepath.Join(f.dataDir, "left-over"), "x")
	writeFile(t, filepath.Join(f.dir, "reset-pending"), "2030-01-01T00:00:00Z")
	res, err := f.api.ResumeReset(context.Background())
	if err != nil || res == nil {
		t.Fatalf("resume: %v, %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(f.dataDir, "left-over")); !os.IsNotExist(err) {
		t.Fatal("interrupted reset not finished")
	}
	if again, err := f.api.ResumeReset(context.Background()); again != nil || err != nil {
		t.Fatalf("second resume: %v, %v; want nothing to do", again, err)
	}
}
