package agent_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/koshin-ota/koshin/agent"
)

func TestFileCounter(t *testing.T) {
	dir := t.TempDir()
	c := &agent.FileCounter{FS: agent.DirFS(dir), Key: []byte("device-local key")}
	get := func() uint64 {
		t.Helper()
		n, err := c.Get("rootfs")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if get() != 0 {
		t.Fatal("fresh counter not 0")
	}
	for _, step := range []struct{ to, want uint64 }{{3, 3}, {2, 3}, {3, 3}, {5, 5}} {
		if err := c.Advance("rootfs", step.to); err != nil {
			t.Fatal(err)
		}
		if got := get(); got != step.want {
			t.Fatalf("after Advance(%d): %d, want %d", step.to, got, step.want)
		}
	}
	// Damage the newest copy: the previous value (3) remains.
	newest := newestCopy(t, dir)
	if err := os.WriteFile(newest, []byte(`{"seq":99,"counters":{"rootfs":1000}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != 3 {
		t.Fatalf("with the newest copy forged: %d, want the previous 3", got)
	}
	// Another key sees only forgeries.
	other := &agent.FileCounter{FS: agent.DirFS(dir), Key: []byte("another key")}
	if _, err := other.Get("rootfs"); !errors.Is(err, agent.ErrCorruptCounter) {
		t.Fatalf("wrong key: %v, want ErrCorruptCounter", err)
	}
	if err := other.Advance("rootfs", 9); !errors.Is(err, agent.ErrCorruptCounter) {
		t.Fatalf("advance with a corrupt counter: %v", err)
	}
}

// newestCopy returns the copy with the higher sequence number.
func newestCopy(t *testing.T, dir string) string {
	t.Helper()
	var newest string
	var best uint64
	for _, n := range []string{"counter.0", "counter.1"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		var rec struct{ Seq uint64 }
		if err == nil && json.Unmarshal(b, &rec) == nil && rec.Seq >= best {
			newest, best = filepath.Join(dir, n), rec.Seq
		}
	}
	return newest
}

func TestFileCounterBothCopiesCorrupt(t *testing.T) {
	dir := t.TempDir()
	c := &agent.FileCounter{FS: agent.DirFS(dir)}
	for _, n := range []string{"counter.0", "counter.1"} {
		os.WriteFile(filepath.Join(dir, n), []byte("garbage"), 0o600)
	}
	if _, err := c.Get("rootfs"); !errors.Is(err, agent.ErrCorruptCounter) {
		t.Fatalf("both copies corrupt: %v, want ErrCorruptCounter (never silently 0)", err)
	}
}

// FuzzFileCounter: whatever the two copies hold, reading never panics and
// either yields a value or ErrCorruptCounter; a value read can be advanced
// and reads back.
func FuzzFileCounter(f *testing.F) {
	f.Add([]byte(`{"seq":1,"counters":{"rootfs":2},"mac":"00"}`), []byte("garbage"))
	f.Add([]byte(`{}`), []byte(`{"seq":18446744073709551615}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "counter.0"), a, 0o600)
		os.WriteFile(filepath.Join(dir, "counter.1"), b, 0o600)
		c := &agent.FileCounter{FS: agent.DirFS(dir)}
		n, err := c.Get("rootfs")
		if err != nil {
			if !errors.Is(err, agent.ErrCorruptCounter) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if n >= 1<<53 {
			return
		}
		if err := c.Advance("rootfs", n+1); err != nil {
			t.Fatalf("advance from %d: %v", n, err)
		}
		if m, err := c.Get("rootfs"); err != nil || m != n+1 {
			t.Fatalf("after advance to %d: %d, %v", n+1, m, err)
		}
	})
}
