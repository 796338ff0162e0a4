package repo_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// testNow is the fixed clock of every test; expiries follow from it.
var testNow = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// edKey returns a deterministic Ed25519 key, so golden files are stable.
func edKey(seed byte) crypto.Signer {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func ecKey(tb testing.TB) crypto.Signer {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func keyID(tb testing.TB, s crypto.Signer) string {
	tb.Helper()
	id, err := keys.KeyID(s.Public())
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// fixture is a repository with one key per role (seeds 1-4), not yet
// committed.
type fixture struct {
	dir                                string
	r                                  *repo.Repo
	root, targets, snapshot, timestamp crypto.Signer
}

func (f *fixture) online() repo.OnlineKeys {
	return repo.OnlineKeys{Snapshot: f.snapshot, Timestamp: f.timestamp}
}

func newFixture(tb testing.TB, opts repo.InitOptions) *fixture {
	tb.Helper()
	if opts.Channel == "" {
		opts.Channel = trust.ChannelRelease
	}
	opts.Now = func() time.Time { return testNow }
	f := &fixture{dir: filepath.Join(tb.TempDir(), "repo"), root: edKey(1), targets: edKey(2), snapshot: edKey(3), timestamp: edKey(4)}
	r, err := repo.Init(f.dir, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	f.r = r
	for _, k := range []struct {
		role string
		s    crypto.Signer
		ref  string
	}{{"root", f.root, ""}, {"targets", f.targets, ""}, {"snapshot", f.snapshot, "keys/snapshot.key"}, {"timestamp", f.timestamp, "keys/timestamp.key"}} {
		must(tb, r.AddKey(k.role, k.s.Public(), k.ref))
	}
	return f
}

// committed returns a fixture whose root 1 and empty targets 1 are signed
// and committed.
func committed(tb testing.TB) *fixture {
	tb.Helper()
	f := newFixture(tb, repo.InitOptions{})
	must(tb, f.r.Sign("root", f.root))
	must(tb, f.r.Sign("targets", f.targets))
	f.commit(tb)
	return f
}

func (f *fixture) commit(tb testing.TB) repo.Committed {
	tb.Helper()
	c, err := f.r.Commit(testNow, f.online())
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// release adds a target and signs and commits it.
func (f *fixture) release(tb testing.TB, name string, c trust.TargetCustom) {
	tb.Helper()
	must(tb, f.r.AddTarget(name, bytes.NewReader(payload(name)), c, nil))
	must(tb, f.r.Sign("targets", f.targets))
	f.commit(tb)
}

// reopen closes and opens the repository again, as the next command would.
func (f *fixture) reopen(tb testing.TB) {
	tb.Helper()
	must(tb, f.r.Close())
	r, err := repo.Open(f.dir)
	if err != nil {
		tb.Fatal(err)
	}
	r.Now = func() time.Time { return testNow }
	tb.Cleanup(func() { r.Close() })
	f.r = r
}

func payload(name string) []byte { return []byte("payload of " + name + "\n") }

func custom(component string, counter uint64, hw ...string) trust.TargetCustom {
	return trust.TargetCustom{HardwareIDs: hw, Component: component, ReleaseCounter: counter, Version: "1.0", Channel: trust.ChannelRelease}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func wantErr(tb testing.TB, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Fatalf("error = %v, want %v", err, target)
	}
}

func readMeta[T metadata.Roles](tb testing.TB, name string) *metadata.Metadata[T] {
	tb.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := new(metadata.Metadata[T]).FromBytes(b)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// failReader fails the test if anything reads it: refusals must come before
// the payload is streamed.
type failReader struct{ tb testing.TB }

func (r failReader) Read([]byte) (int, error) {
	r.tb.Error("payload was read although the target is refused")
	return 0, io.EOF
}
