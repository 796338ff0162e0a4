package repo

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/trust"
)

var crashNow = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func crashKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// crashRepo is a committed repository with one signed target staged,
// ready to commit: the multi-file operation under test.
func crashRepo(t *testing.T) (dir string, online OnlineKeys) {
	t.Helper()
	root, targets := crashKey(1), crashKey(2)
	online = OnlineKeys{Snapshot: crashKey(3), Timestamp: crashKey(4)}
	dir = filepath.Join(t.TempDir(), "repo")
	r, err := Init(dir, InitOptions{Channel: trust.ChannelRelease, Now: func() time.Time { return crashNow }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	steps := []error{
		r.AddKey("root", root.Public(), ""),
		r.AddKey("targets", targets.Public(), ""),
		r.AddKey("snapshot", online.Snapshot.Public(), ""),
		r.AddKey("timestamp", online.Timestamp.Public(), ""),
		r.Sign("root", root),
		r.Sign("targets", targets),
	}
	if _, err := r.Commit(crashNow, online); err != nil {
		steps = append(steps, err)
	}
	c := trust.TargetCustom{HardwareIDs: []string{"board-a"}, Component: "rootfs", ReleaseCounter: 1, Channel: trust.ChannelRelease}
	steps = append(steps, r.AddTarget("rootfs-1", bytes.NewReader([]byte("image")), c, nil), r.Sign("targets", targets))
	if err := errors.Join(steps...); err != nil {
		t.Fatal(err)
	}
	return dir, online
}

// A crash at any point of a commit — after the targets, the snapshot or the
// timestamp file, or just before the commit point — leaves a repository
// that opens in its previous state with the staged targets and signature
// intact; the next commit then succeeds.
func TestCommitCrashSafety(t *testing.T) {
	for _, point := range []string{"commit:targets", "commit:snapshot", "commit:timestamp", "commit:current.json"} {
		t.Run(point, func(t *testing.T) {
			dir, online := crashRepo(t)
			r, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			before := r.Versions()
			crash := errors.New("power cut")
			crashHook = func(p string) error {
				if p == point {
					return crash
				}
				return nil
			}
			_, err = r.Commit(crashNow, online)
			crashHook = nil
			if !errors.Is(err, crash) {
				t.Fatalf("commit error = %v, want the injected crash", err)
			}
			if r.Versions() != before {
				t.Fatalf("in-memory state moved to %+v after a failed commit", r.Versions())
			}
			r.Close()

			r, err = Open(dir)
			if err != nil {
				t.Fatalf("reopen after crash: %v", err)
			}
			defer r.Close()
			if r.Versions() != before {
				t.Fatalf("versions after crash %+v, want %+v", r.Versions(), before)
			}
			if st, err := r.SignatureStatus("targets"); err != nil || !st.Complete() {
				t.Fatalf("staged targets lost: %+v %v", st, err)
			}
			if _, err := r.Commit(crashNow, online); err != nil {
				t.Fatalf("commit after crash: %v", err)
			}
			if v := r.Versions(); v.Targets != before.Targets+1 || v.Snapshot != before.Snapshot+1 {
				t.Fatalf("versions after recovery %+v", v)
			}
		})
	}
}

// A crash after the commit point but before the staged file is removed
// leaves a staged version equal to the signed one; Open discards it.
func TestStaleStagedDiscarded(t *testing.T) {
	dir, online := crashRepo(t)
	staged, err := os.ReadFile(filepath.Join(dir, stagedDir, "targets.json"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Commit(crashNow, online); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := os.WriteFile(filepath.Join(dir, stagedDir, "targets.json"), staged, fileMode); err != nil {
		t.Fatal(err)
	}
	r, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.staged(roleTargets) {
		t.Fatal("stale staged targets kept")
	}
	if _, err := os.Stat(filepath.Join(dir, stagedDir, "targets.json")); !os.IsNotExist(err) {
		t.Fatal("stale staged targets not removed")
	}
}

// A crash while publishing, before timestamp.json, leaves the published
// tree at the old timestamp, which still leads to a complete old state.
func TestPublishCrashKeepsOldTimestamp(t *testing.T) {
	dir, online := crashRepo(t)
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := filepath.Join(t.TempDir(), "pub")
	if err := r.Publish(out); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(filepath.Join(out, "timestamp.json"))
	if _, err := r.Commit(crashNow, online); err != nil {
		t.Fatal(err)
	}
	crashHook = func(p string) error {
		if p == "publish:timestamp" {
			return errors.New("power cut")
		}
		return nil
	}
	err = r.Publish(out)
	crashHook = nil
	if err == nil {
		t.Fatal("publish did not fail")
	}
	if now, _ := os.ReadFile(filepath.Join(out, "timestamp.json")); !bytes.Equal(now, old) {
		t.Fatal("timestamp.json replaced before the files it leads to were complete")
	}
	if err := r.Publish(out); err != nil {
		t.Fatal(err)
	}
}

// Two processes editing one workspace would lose each other's changes; the
// second Open is refused.
func TestOpenLocks(t *testing.T) {
	dir, _ := crashRepo(t)
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrBusy) {
		t.Fatalf("second open: %v, want ErrBusy", err)
	}
	r.Close()
	r, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}

// Damage to the signed state is detected at Open.
func TestOpenDetectsTampering(t *testing.T) {
	dir, _ := crashRepo(t)
	name := filepath.Join(dir, signedDir, "1.targets.json")
	b, _ := os.ReadFile(name)
	b = bytes.Replace(b, []byte(`"targets": {}`), []byte(`"targets": {}, "x": 1`), 1)
	if !bytes.Contains(b, []byte(`"x": 1`)) {
		t.Fatal("test did not manage to alter the file")
	}
	if err := os.WriteFile(name, b, fileMode); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open tampered repository: %v, want ErrCorrupt", err)
	}
}
