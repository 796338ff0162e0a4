package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/encryption"
	"github.com/koshin-ota/koshin/trust/verify"
)

type importResult struct {
	Imported  []string
	Unchanged int
	Revoked   []string
}

// TestReleaseImportAndRevocation: releases come only from the published
// image repository after it verifies like a device would; a target the
// repository revokes (removed, floor raised: CCDS UPC05) is revoked on the
// next import, which halts its rollouts; a tampered repository imports
// nothing.
func TestReleaseImportAndRevocation(t *testing.T) {
	e := newE2E(t, e2eOpts{}, e2eRelease{name: "fw-1.0", hw: []string{"board-a"}, counter: 1},
		e2eRelease{name: "fw-2.0", hw: []string{"board-a", "board-b"}, counter: 2})
	admin := e.adminToken()
	var res importResult
	e.must(e.call("POST", "/api/v1/releases/import", admin, nil), 200).decode(t, &res)
	if !slices.Equal(res.Imported, []string{"fw-1.0", "fw-2.0"}) {
		t.Fatalf("first import: %+v", res)
	}
	e.must(e.call("POST", "/api/v1/releases/import", admin, nil), 200).decode(t, &res)
	if len(res.Imported) != 0 || res.Unchanged != 2 {
		t.Fatalf("second import: %+v", res)
	}
	var rel koshin.Release
	e.must(e.call("GET", "/api/v1/releases/fw-2.0", admin, nil), 200).decode(t, &rel)
	if rel.ReleaseCounter != 2 || !slices.Equal(rel.HardwareIDs, []string{"board-a", "board-b"}) || rel.Component != "rootfs" || len(rel.Hashes["sha256"]) != 64 {
		t.Fatalf("release: %+v", rel)
	}

	d := e.enrollWithToken(admin, "SN-1")
	d.mustCheckIn()
	id := e.createRollout(admin, map[string]any{"release": "fw-2.0", "selector": map[string]any{"all": true},
		"phases": []map[string]any{{"percent": 100}}, "threshold": map[string]any{"max_failures": 1},
		"silence_timeout": int64(3600e9), "mode": "automatic"})
	e.must(e.call("POST", fmt.Sprintf("/api/v1/rollouts/%d/start", id), admin, nil), 200)

	r := e.reopenRepo()
	mustDo(t, r.Revoke("fw-2.0"))
	e.commit(r)
	e.must(e.call("POST", "/api/v1/releases/import", admin, nil), 200).decode(t, &res)
	// Revoking fw-2.0 raised the rootfs floor on board-a to 3, which also
	// retires the older fw-1.0: a device would refuse both now.
	if !slices.Equal(res.Revoked, []string{"fw-1.0", "fw-2.0"}) {
		t.Fatalf("import after revocation: %+v", res)
	}
	if st := e.rolloutStatus(admin, id); st.Rollout.State != koshin.RolloutHalted {
		t.Fatalf("rollout of a revoked release: %s", st.Rollout.State)
	}
	e.must(e.call("POST", "/api/v1/rollouts", admin, map[string]any{"release": "fw-2.0", "selector": map[string]any{"all": true},
		"phases": []map[string]any{{"percent": 100}}, "threshold": map[string]any{"max_failures": 1},
		"silence_timeout": int64(3600e9), "mode": "automatic"}), 409)

	// A new release whose timestamp is altered after signing (its version
	// 3 becomes 13): nothing is imported.
	r = e.reopenRepo()
	e.addTarget(r, e2eRelease{name: "fw-3.0", hw: []string{"board-a"}, counter: 3})
	e.commit(r)
	ts := filepath.Join(e.published, "timestamp.json")
	tampered := bytes.Replace(mustRead(t, ts), []byte(`"version": `), []byte(`"version": 1`), 1)
	mustDo(t, os.WriteFile(ts, tampered, 0o644))
	a := e.call("POST", "/api/v1/releases/import", admin, nil)
	if a.Status != 400 || !bytes.Contains(a.Body, []byte("does not verify")) {
		t.Fatalf("tampered repository: %d %s", a.Status, a.Body)
	}
	e.must(e.call("GET", "/api/v1/releases/fw-3.0", admin, nil), 404)
}

func mustRead(t *testing.T, name string) []byte {
	b, err := os.ReadFile(name)
	mustDo(t, err)
	return b
}

// TestEncryptedRelease: the director wraps an encrypted release's content
// key to each device's X25519 key (HPKE, bound to device and release,
// EN 303 645 5.5-7); the device unwraps it after verifying the
// instruction and decrypts the payload. A device without an encryption key
// is not offered the release.
func TestEncryptedRelease(t *testing.T) {
	e := newE2E(t, e2eOpts{}, e2eRelease{name: "fw-secret", hw: []string{"board-a"}, counter: 2, encrypted: true})
	admin := e.adminToken()
	e.must(e.call("POST", "/api/v1/releases/import", admin, nil), 200)
	var rel koshin.Release
	e.must(e.call("GET", "/api/v1/releases/fw-secret", admin, nil), 200).decode(t, &rel)
	if !rel.Encrypted {
		t.Fatal("release not marked encrypted")
	}
	with := e.newDevice("SN-ENC", "board-a")
	var err error
	with.enc, err = encryption.GenerateDeviceKey()
	mustDo(t, err)
	var tok struct{ Token string }
	e.must(e.call("POST", "/api/v1/enrollment-tokens", admin, map[string]any{}), 201).decode(t, &tok)
	mustDo(t, with.enroll(tok.Token))
	without := e.enrollWithToken(admin, "SN-PLAIN")
	with.mustCheckIn()
	without.mustCheckIn()
	id := e.createRollout(admin, map[string]any{"release": "fw-secret", "selector": map[string]any{"all": true},
		"phases": []map[string]any{{"percent": 100}}, "threshold": map[string]any{"max_failures": 2},
		"silence_timeout": int64(3600e9), "mode": "forced"})
	e.must(e.call("POST", fmt.Sprintf("/api/v1/rollouts/%d/start", id), admin, nil), 200)
	e.tick()

	if resp := without.mustCheckIn(); resp.Director != nil {
		t.Fatal("a device without an encryption key was offered an encrypted release")
	}
	resp := with.mustCheckIn()
	if resp.Director == nil || resp.Mode != "forced" {
		t.Fatalf("encrypted release not offered: %+v", resp)
	}
	plan := e.verifyOwn(with)
	in := plan.Targets[0]
	rid, err := encryption.ReleaseID(in.Name, in.Hashes["sha256"])
	mustDo(t, err)
	key, err := encryption.UnwrapKey(with.enc, in.WrappedKey, with.id, rid)
	mustDo(t, err)
	if !bytes.Equal(key, e.keys["fw-secret"]) {
		t.Fatal("unwrapped key differs from the release's content key")
	}
	ct := mustRead(t, filepath.Join(e.published, "targets", fmt.Sprintf("%x.%s", in.Hashes["sha256"], in.Name)))
	pr, err := encryption.NewReader(bytes.NewReader(ct), key)
	mustDo(t, err)
	pt, err := io.ReadAll(pr)
	if err != nil || string(pt) != "payload of fw-secret" {
		t.Fatalf("decrypted %q, %v", pt, err)
	}
}

// verifyOwn runs the device-side verifier on d's last instruction.
func (e *e2e) verifyOwn(d *device) *verify.Plan {
	t := e.t
	vdir := t.TempDir()
	dirRoot, err := e.srv.Director.RootVersion(1)
	mustDo(t, err)
	mustDo(t, verify.Provision(vdir, mustRead(t, filepath.Join(e.published, "1.root.json")), dirRoot, trust.ChannelRelease))
	base := e.srv.DeviceURL()
	v, err := verify.New(verify.Config{
		Device: trust.Device{ID: d.id, HardwareID: d.hw, Channel: trust.ChannelRelease, Installed: map[string]uint64{"rootfs": 1}},
		Dir:    vdir, ImageURL: base + "/device/v1/image", DirectorURL: base + "/device/v1/director",
		TargetsURL: base + "/device/v1/targets", Now: e.clock.Now,
		Fetcher: &verify.HTTPFetcher{Client: verify.NewHTTPClient(e.tlsConfig(d.cert)), Now: e.clock.Now},
	})
	mustDo(t, err)
	mustDo(t, v.RefreshImage(context.Background()))
	plan, err := v.CheckDirector(context.Background(), d.lastDoc, d.nonce)
	mustDo(t, err)
	return plan
}
