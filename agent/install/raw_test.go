package install_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/install"
	"github.com/koshin-ota/koshin/trust"
)

func slots(t *testing.T, size int) install.FileSlots {
	t.Helper()
	dir := t.TempDir()
	s := install.FileSlots{A: filepath.Join(dir, "a.img"), B: filepath.Join(dir, "b.img")}
	for _, p := range []string{s.A, s.B} {
		if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func hexsum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func tx(name string, payload []byte) *agent.Transaction {
	return &agent.Transaction{ID: "tx1", State: agent.StateDownloading, Slot: "B", FromSlot: "A",
		Target: agent.Target{Name: name, Length: int64(len(payload)), Hashes: map[string]string{"sha256": hexsum(payload)},
			Custom: trust.TargetCustom{HardwareIDs: []string{"hw"}, Component: "rootfs", ReleaseCounter: 2, Version: "2", Channel: trust.ChannelRelease}}}
}

func random(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// write streams p through a fresh sink at offset and records the digest.
func write(t *testing.T, h agent.Installer, tx *agent.Transaction, offset int64, p []byte) error {
	t.Helper()
	sink, err := h.Open(context.Background(), tx, offset)
	if err != nil {
		return err
	}
	if _, err := sink.Write(p); err != nil {
		sink.Abort()
		return err
	}
	d, err := sink.Finish()
	tx.Written = &d
	return err
}

func TestRawPlainResume(t *testing.T) {
	s := slots(t, 1<<20)
	r := &install.Raw{Slots: s}
	img := random(300 << 10)
	tr := tx("rootfs.img", img)
	if err := write(t, r, tr, 0, img[:100<<10]); err != nil {
		t.Fatal(err)
	}
	// Restart: the second half goes on from the checkpoint.
	if err := write(t, r, tr, 100<<10, img[100<<10:]); err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(context.Background(), tr); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if tr.Written.Length != int64(len(img)) {
		t.Fatalf("written length %d", tr.Written.Length)
	}
	got, _ := os.ReadFile(s.B)
	if !bytes.Equal(got[:len(img)], img) {
		t.Fatal("slot B does not hold the image")
	}
	// A flipped byte in the slot is caught by the read-back.
	got[1234] ^= 1
	os.WriteFile(s.B, got, 0o600)
	if err := r.Verify(context.Background(), tr); !errors.Is(err, agent.ErrSlotMismatch) {
		t.Fatalf("verify of a damaged slot: %v, want ErrSlotMismatch", err)
	}
}

func TestRawRefuses(t *testing.T) {
	s := slots(t, 64<<10)
	r := &install.Raw{Slots: s}
	big := tx("big.img", random(65<<10))
	if _, err := r.Open(context.Background(), big, 0); !errors.Is(err, agent.ErrUnusable) {
		t.Fatalf("image larger than the slot: %v, want ErrUnusable", err)
	}
	running := tx("x.img", random(10))
	running.Slot = "A"
	if _, err := r.Open(context.Background(), running, 0); err == nil {
		t.Fatal("opened the booted slot for writing")
	}
	a, _ := os.ReadFile(s.A)
	if !bytes.Equal(a, make([]byte, 64<<10)) {
		t.Fatal("slot A was written")
	}
}

func zst(t *testing.T, b []byte) []byte {
	enc, err := zstd.NewWriter(nil, zstd.WithWindowSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return enc.EncodeAll(b, nil)
}

func TestRawZstd(t *testing.T) {
	s := slots(t, 1<<20)
	r := &install.Raw{Slots: s}
	img := append(bytes.Repeat([]byte("koshin "), 50_000), random(4096)...)
	payload := zst(t, img)
	tr := tx("rootfs.img.zst", payload)
	if r.Resumable(tr.Target) {
		t.Fatal("a compressed image cannot resume after a restart")
	}
	if err := write(t, r, tr, 0, payload); err != nil {
		t.Fatal(err)
	}
	if tr.Written.SHA256 != hexsum(img) || tr.Written.Length != int64(len(img)) {
		t.Fatalf("digest %+v, want the decompressed image's", tr.Written)
	}
	if err := r.Verify(context.Background(), tr); err != nil {
		t.Fatal(err)
	}
	// A stream that is not zstd, and one that decompresses past the slot.
	if err := write(t, r, tx("bad.img.zst", []byte("not zstd")), 0, []byte("not zstd")); !errors.Is(err, agent.ErrUnusable) {
		t.Fatalf("garbage stream: %v, want ErrUnusable", err)
	}
	huge := zst(t, make([]byte, 2<<20))
	if err := write(t, r, tx("huge.img.zst", huge), 0, huge); !errors.Is(err, agent.ErrUnusable) {
		t.Fatalf("stream larger than the slot: %v, want ErrUnusable", err)
	}
}

func TestFileSlots(t *testing.T) {
	s := slots(t, 4096)
	sl, err := s.Slot("B")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := sl.Size(); err != nil || n != 4096 {
		t.Fatalf("size %d, %v", n, err)
	}
	w, err := sl.Writer(100)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("hello"))
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	b, _ := os.ReadFile(s.B)
	if string(b[100:105]) != "hello" || len(b) != 4096 {
		t.Fatal("write at offset")
	}
	if _, err := s.Slot("C"); err == nil {
		t.Fatal("slot C exists")
	}
}
