package verify_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Every accepted file is persisted under its non-versioned name, with no
// temporary files left behind, byte for byte as served.
func TestPersistedMetadata(t *testing.T) {
	f := newFixture(t)
	if _, err := f.check(release); err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{
		"image/root.json":      f.img.TrustedRoot(),
		"image/timestamp.json": f.img.File(trusttest.RolePath(metadata.TIMESTAMP, 0)),
		"image/snapshot.json":  f.img.File(trusttest.RolePath(metadata.SNAPSHOT, 2)),
		"image/targets.json":   f.img.File(trusttest.RolePath(metadata.TARGETS, 2)),
		"director/root.json":   f.dir.TrustedRoot(),
	}
	for name, data := range want {
		got, err := os.ReadFile(filepath.Join(f.stateDir, name))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: %d bytes, err %v; want the served %d bytes", name, len(got), err, len(data))
		}
	}
	for _, sub := range []string{"image", "director"} {
		entries, err := os.ReadDir(filepath.Join(f.stateDir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("temporary file left: %s/%s", sub, e.Name())
			}
		}
	}
}

// After a restart the persisted state is the reference: an older
// timestamp or director instruction is still a rollback, and a root
// rotation is not walked again.
func TestRestart(t *testing.T) {
	f := newFixture(t)
	rotateRoot(f.img)
	f.img.Publish()
	oldTS := f.img.File(trusttest.RolePath(metadata.TIMESTAMP, 0))
	f.img.Publish()
	nonce := f.nonce()
	stale := f.dir.DirectorTargets(f.dev.ID, nonce) // version 1, held back
	if _, err := f.check(release); err != nil {     // accepts director version 2
		t.Fatal(err)
	}
	f.img.Requests()

	f.v = f.open() // restart
	f.refresh()
	if got := f.img.Requests(); !slices.Equal(got, []string{trusttest.RootPath(3), "metadata/timestamp.json"}) {
		t.Errorf("after restart requests = %v: want only the next root and the timestamp", got)
	}
	_, err := f.v.CheckDirector(context.Background(), f.dir.SignTargets(stale), nonce)
	wantErr(t, err, trust.ErrRollback)

	f.img.SetFile(trusttest.RolePath(metadata.TIMESTAMP, 0), oldTS)
	f.v = f.open()
	wantErr(t, refreshErr(f), trust.ErrRollback)
}

// A persisted file the device can no longer use (corrupted, or signed by a
// rotated-out key) is set aside and replaced from the repository.
func TestCorruptLocalMetadata(t *testing.T) {
	f := newFixture(t)
	f.refresh()
	for _, role := range []string{"timestamp", "snapshot", "targets"} {
		if err := os.WriteFile(filepath.Join(f.stateDir, "image", role+".json"), []byte("{not json"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f.v = f.open()
	if _, err := f.check(release); err != nil {
		t.Fatal(err)
	}
}
