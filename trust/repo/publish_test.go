package repo_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// The published tree is what a TUF client expects: go-tuf's trusted
// metadata walks root 1 → 2, then timestamp → snapshot → targets, and each
// payload's name starts with its hash.
func TestPublishLayout(t *testing.T) {
	f := committed(t)
	f.release(t, "rootfs-1.img", custom("rootfs", 1, "board-a"))
	must(t, f.r.RotateRoot(map[string]repo.RoleSpec{"root": {Keys: nil, Threshold: 1}}, f.root))
	f.commit(t)
	f.release(t, "app-1.tar", custom("app", 1, "board-a"))
	out := filepath.Join(t.TempDir(), "pub")
	must(t, f.r.Publish(out))

	v := f.r.Versions()
	for _, name := range []string{"1.root.json", "2.root.json", "root.json", "timestamp.json",
		versionName(v.Targets, "targets"), versionName(v.Snapshot, "snapshot")} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Fatal(err)
		}
	}
	tm := clientWalk(t, out, 2, testNow)
	if tm.Snapshot.Signed.Meta["targets.json"].Version != v.Targets || tm.Timestamp.Signed.Meta["snapshot.json"].Version != v.Snapshot {
		t.Fatalf("client sees timestamp→snapshot %d, snapshot→targets %d; want %d, %d",
			tm.Timestamp.Signed.Meta["snapshot.json"].Version, tm.Snapshot.Signed.Meta["targets.json"].Version, v.Snapshot, v.Targets)
	}
	for name, tf := range tm.Targets["targets"].Signed.Targets {
		b, err := os.ReadFile(filepath.Join(out, "targets", hex.EncodeToString(tf.Hashes["sha256"])+"."+name))
		must(t, err)
		must(t, tf.VerifyLengthHashes(b))
		if !bytes.Equal(b, payload(name)) {
			t.Fatalf("%s: wrong content", name)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(out, "targets"))
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(out, "targets", e.Name()))
		sum := sha256.Sum256(b)
		if !strings.HasPrefix(e.Name(), hex.EncodeToString(sum[:])+".") {
			t.Fatalf("payload %s does not start with its sha256", e.Name())
		}
	}

	// Idempotent, and still valid after a timestamp refresh.
	must(t, f.r.Publish(out))
	must(t, f.r.Timestamp(testNow.Add(time.Hour), f.snapshot, f.timestamp))
	must(t, f.r.Publish(out))
	clientWalk(t, out, 2, testNow.Add(time.Hour))
}

// clientWalk verifies a published tree the way a device does, with go-tuf.
func clientWalk(t *testing.T, out string, roots int, now time.Time) *trustedmetadata.TrustedMetadata {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(out, name))
		must(t, err)
		return b
	}
	tm, err := trustedmetadata.New(read("1.root.json"))
	must(t, err)
	tm.RefTime = now
	for v := 2; v <= roots; v++ {
		_, err := tm.UpdateRoot(read(versionName(int64(v), "root")))
		must(t, err)
	}
	_, err = tm.UpdateTimestamp(read("timestamp.json"))
	must(t, err)
	_, err = tm.UpdateSnapshot(read(versionName(tm.Timestamp.Signed.Meta["snapshot.json"].Version, "snapshot")), false)
	must(t, err)
	_, err = tm.UpdateTargets(read(versionName(tm.Snapshot.Signed.Meta["targets.json"].Version, "targets")))
	must(t, err)
	return tm
}

func versionName(v int64, role string) string {
	return strconv.FormatInt(v, 10) + "." + role + ".json"
}

// Published versions never change, and a damaged payload store is caught.
func TestPublishRefusesChanges(t *testing.T) {
	f := committed(t)
	out := filepath.Join(t.TempDir(), "pub")
	must(t, f.r.Publish(out))
	must(t, os.WriteFile(filepath.Join(out, "1.root.json"), []byte("{}"), 0o644))
	wantErr(t, f.r.Publish(out), repo.ErrCorrupt)

	f = committed(t)
	must(t, f.r.AddTarget("a", bytes.NewReader(payload("a")), custom("rootfs", 1, "board-a"), nil))
	must(t, f.r.Sign("targets", f.targets))
	f.commit(t)
	sum := sha256.Sum256(payload("a"))
	stored := filepath.Join(f.dir, "payloads", hex.EncodeToString(sum[:]))
	must(t, os.Chmod(stored, 0o644))
	must(t, os.WriteFile(stored, bytes.ToUpper(payload("a")), 0o644))
	wantErr(t, f.r.Publish(filepath.Join(t.TempDir(), "pub")), repo.ErrCorrupt)
}

func TestPublishNeedsCommit(t *testing.T) {
	f := newFixture(t, repo.InitOptions{})
	wantErr(t, f.r.Publish(t.TempDir()), repo.ErrNotCommitted)
}

// Timestamp renews snapshot and timestamp, refuses keys the root does not
// authorise, and refuses to paper over expired targets.
func TestTimestamp(t *testing.T) {
	f := committed(t)
	later := testNow.Add(20 * time.Hour)
	must(t, f.r.Timestamp(later, f.snapshot, f.timestamp))
	if v := f.r.Versions(); v.Snapshot != 2 || v.Timestamp != 2 || v.Targets != 1 {
		t.Fatalf("versions = %+v", v)
	}
	for _, gone := range []string{"1.snapshot.json", "1.timestamp.json"} {
		if _, err := os.Stat(filepath.Join(f.dir, "signed", gone)); !os.IsNotExist(err) {
			t.Fatalf("%s not pruned", gone)
		}
	}
	ts := readMeta[metadata.TimestampType](t, filepath.Join(f.dir, "signed", "2.timestamp.json"))
	if want := later.Add(24 * time.Hour); !ts.Signed.Expires.Equal(want) {
		t.Fatalf("timestamp expires %v, want %v", ts.Signed.Expires, want)
	}
	wantErr(t, f.r.Timestamp(later, f.snapshot, f.targets), repo.ErrNotAuthorised)
	wantErr(t, f.r.Timestamp(testNow.Add(91*24*time.Hour), f.snapshot, f.timestamp), trust.ErrExpired)

	_, err := newFixture(t, repo.InitOptions{}).r.Commit(testNow, f.online())
	wantErr(t, err, repo.ErrNothingToCommit)
}

func TestCommitRefusesExpired(t *testing.T) {
	f := committed(t)
	must(t, f.r.Stage("targets"))
	must(t, f.r.Sign("targets", f.targets))
	_, err := f.r.Commit(testNow.Add(100*24*time.Hour), f.online())
	wantErr(t, err, trust.ErrExpired)
	if v := f.r.Versions(); v.Targets != 1 {
		t.Fatalf("versions after refused commit: %+v", v)
	}
}
