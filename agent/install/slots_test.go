package install

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The slot writer's goroutine writes every chunk in order at the right
// offset, whatever the sizes of the writes it was given.
func TestSlotWriterOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slot")
	const size = 5<<20 + 12345
	if err := os.WriteFile(path, make([]byte, size+100), 0o600); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	w, err := fileSlot(path).Writer(100)
	if err != nil {
		t.Fatal(err)
	}
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1+rng.IntN(300<<10))
		if _, err := w.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
		if rng.IntN(10) == 0 {
			if err := w.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Fatal("second Close succeeded")
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:100], make([]byte, 100)) || !bytes.Equal(got[100:], data) {
		t.Fatal("slot content differs from what was written")
	}
}

// A write that fails in the writing goroutine is reported by the next
// Sync, and by every call after it.
func TestSlotWriterError(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	w, err := fileSlot("/dev/full").Writer(0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(make([]byte, 3*writeChunk)); err != nil {
		t.Fatalf("write: %v (errors surface at the next Flush or Sync)", err)
	}
	for i := range 2 {
		if err := w.Sync(); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("sync %d: %v, want ENOSPC", i, err)
		}
	}
}
