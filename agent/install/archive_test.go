package install_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/install"
)

type entry struct {
	name, body, link string
	typ              byte
}

func tarball(t *testing.T, entries ...entry) []byte {
	t.Helper()
	return tarballF(entries...)
}

func tarballF(entries ...entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeDir {
			h.Mode = 0o755
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func stage(t *testing.T, h agent.Installer, id, name string, payload []byte) *agent.Transaction {
	t.Helper()
	tr := tx(name, payload)
	tr.ID, tr.Slot, tr.FromSlot = id, "", ""
	if err := write(t, h, tr, 0, payload); err != nil {
		t.Fatal(err)
	}
	if err := h.Verify(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	return tr
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestArchiveSwitchCommitRollback(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := &install.Archive{Root: filepath.Join(dir, "app"), Work: filepath.Join(dir, "work")}
	os.MkdirAll(a.Root, 0o755)
	cur := filepath.Join(a.Root, "current")

	v1 := stage(t, a, "tx1", "app-1.tar", tarball(t, entry{name: "./", typ: tar.TypeDir},
		entry{name: "./bin/app", body: "v1"}, entry{name: "./conf", link: "bin/app", typ: tar.TypeSymlink}))
	if err := a.Install(ctx, v1); err != nil {
		t.Fatal(err)
	}
	if err := a.Install(ctx, v1); err != nil { // again, as after a power cut
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(cur, "bin/app")); got != "v1" {
		t.Fatalf("current/bin/app = %q", got)
	}
	if err := a.Commit(ctx, v1); err != nil {
		t.Fatal(err)
	}

	v2 := stage(t, a, "tx2", "app-2.tar.zst", zst(t, tarball(t, entry{name: "bin/app", body: "v2"})))
	if err := a.Install(ctx, v2); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(cur, "bin/app")); got != "v2" {
		t.Fatalf("after switch: %q", got)
	}
	for range 2 {
		if err := a.Rollback(ctx, v2); err != nil {
			t.Fatal(err)
		}
	}
	if got := read(t, filepath.Join(cur, "bin/app")); got != "v1" {
		t.Fatalf("after rollback: %q", got)
	}
	if _, err := os.Stat(filepath.Join(a.Root, "releases", "tx2")); !os.IsNotExist(err) {
		t.Fatal("rolled-back tree left behind")
	}

	v3 := stage(t, a, "tx3", "app-3.tar", tarball(t, entry{name: "bin/app", body: "v3"}))
	if err := a.Install(ctx, v3); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit(ctx, v3); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(a.Root, "releases", "tx1")); !os.IsNotExist(err) {
		t.Fatal("previous tree kept after commit")
	}
	if got := read(t, filepath.Join(cur, "bin/app")); got != "v3" {
		t.Fatalf("after commit: %q", got)
	}
}

func TestArchiveRefusesEscapes(t *testing.T) {
	ctx := context.Background()
	for name, entries := range map[string][]entry{
		"dotdot":   {{name: "../evil", body: "x"}},
		"absolute": {{name: "/tmp/evil", body: "x"}},
		"via link": {{name: "out", link: "..", typ: tar.TypeSymlink}, {name: "out/evil", body: "x"}},
		"device":   {{name: "dev", typ: tar.TypeChar}},
		"hardlink": {{name: "h", link: "../../etc/passwd", typ: tar.TypeLink}},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			a := &install.Archive{Root: filepath.Join(dir, "app"), Work: filepath.Join(dir, "work")}
			os.MkdirAll(a.Root, 0o755)
			tr := stage(t, a, "tx1", "bad.tar", tarball(t, entries...))
			if err := a.Install(ctx, tr); err == nil {
				t.Fatal("installed")
			}
			if _, err := os.Lstat(filepath.Join(a.Root, "current")); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("switched to a refused tree")
			}
			for _, p := range []string{filepath.Join(dir, "evil"), filepath.Join(dir, "app", "evil")} {
				if _, err := os.Stat(p); err == nil {
					t.Fatalf("%s written outside the tree", p)
				}
			}
		})
	}
}

func TestArchiveLimits(t *testing.T) {
	dir := t.TempDir()
	a := &install.Archive{Root: filepath.Join(dir, "app"), Work: filepath.Join(dir, "work"), MaxEntries: 2, MaxBytes: 10}
	os.MkdirAll(a.Root, 0o755)
	many := stage(t, a, "tx1", "many.tar", tarball(t, entry{name: "a"}, entry{name: "b"}, entry{name: "c"}))
	if err := a.Install(context.Background(), many); !errors.Is(err, agent.ErrUnusable) {
		t.Fatalf("too many entries: %v", err)
	}
	big := stage(t, a, "tx2", "big.tar", tarball(t, entry{name: "a", body: "0123456789x"}))
	if err := a.Install(context.Background(), big); !errors.Is(err, agent.ErrUnusable) {
		t.Fatalf("too many bytes: %v", err)
	}
}

func TestStagingResume(t *testing.T) {
	dir := t.TempDir()
	a := &install.Archive{Root: dir, Work: filepath.Join(dir, "work")}
	payload := tarball(t, entry{name: "f", body: "resumed"})
	tr := tx("f.tar", payload)
	tr.Slot, tr.FromSlot = "", ""
	if err := write(t, a, tr, 0, payload[:700]); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Open(context.Background(), tr, 5000); !errors.Is(err, agent.ErrNoResume) {
		t.Fatalf("checkpoint beyond the staged bytes: %v, want ErrNoResume", err)
	}
	if err := write(t, a, tr, 700, payload[700:]); err != nil {
		t.Fatal(err)
	}
	if err := a.Verify(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
}
