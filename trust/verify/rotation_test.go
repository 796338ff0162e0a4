package verify_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// storedVersion reads the version of a persisted metadata file.
func storedVersion(t *testing.T, f *fixture, repo, role string) int64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.stateDir, repo, role+".json"))
	if err != nil {
		t.Fatal(err)
	}
	switch role {
	case metadata.ROOT:
		md, err := metadata.Root().FromBytes(data)
		if err != nil {
			t.Fatal(err)
		}
		return md.Signed.Version
	case metadata.TIMESTAMP:
		md, err := metadata.Timestamp().FromBytes(data)
		if err != nil {
			t.Fatal(err)
		}
		return md.Signed.Version
	default:
		md, err := metadata.Targets().FromBytes(data)
		if err != nil {
			t.Fatal(err)
		}
		return md.Signed.Version
	}
}

// Fast-forward recovery (TUF 5.3.11, CCDS UPC06): an attacker with the
// timestamp key pushed the device to a huge timestamp version; the
// repository rotates the timestamp key and starts again at version 1, and
// the device follows. Without the rotation the reset is a rollback.
func TestFastForwardRecovery(t *testing.T) {
	f := newFixture(t)
	f.img.Timestamp.Signed.Version = 99_999
	f.img.PublishTimestamp()
	f.refresh()
	if v := storedVersion(t, f, "image", metadata.TIMESTAMP); v != 100_000 {
		t.Fatalf("stored timestamp v%d", v)
	}

	f.img.Timestamp.Signed.Version = 0
	f.img.PublishTimestamp()
	wantErr(t, refreshErr(f), trust.ErrRollback) // same key: refused

	f.img.RotateKeys(metadata.TIMESTAMP)
	f.img.PublishRoot()
	f.img.Timestamp.Signed.Version = 0
	f.img.PublishTimestamp()
	f.refresh()
	if v := storedVersion(t, f, "image", metadata.TIMESTAMP); v != 1 {
		t.Fatalf("after recovery stored timestamp v%d, want 1", v)
	}
	if _, err := f.check(release); err != nil {
		t.Fatal(err)
	}
}

// Snapshot-key rotation lets the repository reset the targets version.
func TestFastForwardRecoverySnapshot(t *testing.T) {
	f := newFixture(t)
	f.img.Targets.Signed.Version = 99_999
	f.img.Publish()
	f.refresh()
	f.img.RotateKeys(metadata.SNAPSHOT)
	f.img.PublishRoot()
	f.img.Targets.Signed.Version = 0
	f.img.Publish()
	f.refresh()
	if v := storedVersion(t, f, "image", metadata.TARGETS); v != 1 {
		t.Fatalf("stored targets v%d, want 1", v)
	}
}

// rotateRoot publishes the next root with every key rotated.
func rotateRoot(r *trusttest.Repo) {
	for _, role := range metadata.TOP_LEVEL_ROLE_NAMES {
		r.RotateKeys(role)
	}
	r.PublishRoot()
}

// A device offline through 40 root rotations (all keys replaced each time)
// catches up link by link (CCDS UPC06/UPC07).
func TestLongRootChain(t *testing.T) {
	f := newFixture(t)
	for range 40 {
		rotateRoot(f.img)
	}
	f.img.Publish() // signed with the newest keys only
	if _, err := f.check(release); err != nil {
		t.Fatal(err)
	}
	if v := storedVersion(t, f, "image", metadata.ROOT); v != 41 {
		t.Fatalf("stored root v%d, want 41", v)
	}
}

// A chain with one link not signed by its predecessor's keys stops there;
// the device keeps the last good root and trusts nothing beyond it.
func TestBrokenRootChain(t *testing.T) {
	f := newFixture(t)
	for i := 2; i <= 40; i++ {
		if i == 17 {
			f.img.Signers[metadata.ROOT] = nil // forget the old root keys
			f.img.RotateKeys(metadata.ROOT)
			f.img.PublishRoot() // v17 signed by its own keys only
			continue
		}
		rotateRoot(f.img)
	}
	f.img.Publish()
	wantErr(t, refreshErr(f), trust.ErrThreshold)
	if v := storedVersion(t, f, "image", metadata.ROOT); v != 16 {
		t.Fatalf("stored root v%d, want 16", v)
	}
}

// The director's root chain is walked the same way.
func TestDirectorRootRotation(t *testing.T) {
	f := newFixture(t)
	for range 3 {
		rotateRoot(f.dir)
	}
	if _, err := f.check(release); err != nil {
		t.Fatal(err)
	}
	if v := storedVersion(t, f, "director", metadata.ROOT); v != 4 {
		t.Fatalf("stored director root v%d, want 4", v)
	}
	// An instruction signed with a key the current root does not list is
	// refused.
	retired, _ := f.dir.NewSigner()
	f.dir.Signers[metadata.TARGETS] = []signature.Signer{retired}
	_, err := f.check(release)
	wantErr(t, err, trust.ErrThreshold)
}

// Rotation to a dev root is refused on a release device, through either
// repository (CCDS UPC04).
func TestRotationToDevRoot(t *testing.T) {
	for _, which := range []string{"image", "director"} {
		t.Run(which, func(t *testing.T) {
			f := newFixture(t)
			r := f.img
			if which == "director" {
				r = f.dir
			}
			trust.SetRootChannel(&r.Root.Signed, trust.ChannelDev)
			r.PublishRoot()
			_, err := f.check(release)
			wantErr(t, err, trust.ErrWrongChannel)
		})
	}
}
