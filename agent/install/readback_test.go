package install

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/trust"
)

// snapshotSlots are file slots whose readers see the slot as it was when
// they were opened (like agenttest's), and are no io.ReaderAt.
type snapshotSlots struct{ FileSlots }

func (s snapshotSlots) Slot(name string) (agent.Slot, error) {
	sl, err := s.FileSlots.Slot(name)
	return snapshotSlot{sl}, err
}

type snapshotSlot struct{ agent.Slot }

func (s snapshotSlot) Reader() (io.ReadCloser, error) {
	rc, err := s.Slot.Reader()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return io.NopCloser(bytes.NewReader(b)), err
}

func newSlots(t *testing.T, size int) FileSlots {
	t.Helper()
	dir := t.TempDir()
	s := FileSlots{A: filepath.Join(dir, "a.img"), B: filepath.Join(dir, "b.img")}
	for _, p := range []string{s.A, s.B} {
		if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func image(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func transaction(id string, img []byte) *agent.Transaction {
	sum := sha256.Sum256(img)
	return &agent.Transaction{ID: id, State: agent.StateDownloading, Slot: "B", FromSlot: "A",
		Target: agent.Target{Name: "rootfs.img", Length: int64(len(img)), Hashes: map[string]string{"sha256": hex.EncodeToString(sum[:])},
			Custom: trust.TargetCustom{HardwareIDs: []string{"hw"}, Component: "rootfs", ReleaseCounter: 2, Version: "2", Channel: trust.ChannelRelease}}}
}

// stream writes img through a sink in 64 KiB pieces, syncing every sync
// bytes (0: never), and waits for the read-back to reach want bytes
// before it finishes.
func stream(t *testing.T, r *Raw, tx *agent.Transaction, img []byte, sync int, want int64) {
	t.Helper()
	sink, err := r.Open(context.Background(), tx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(img); off += 64 << 10 {
		if _, err := sink.Write(img[off:min(off+64<<10, len(img))]); err != nil {
			t.Fatal(err)
		}
		if sync > 0 && (off+64<<10)%sync == 0 {
			if err := sink.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	rb := sink.(*plainSink).rb
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
		rb.mu.Lock()
		done := rb.done
		rb.mu.Unlock()
		if done >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read-back at %d, want %d before the write finished", done, want)
		}
	}
	d, err := sink.Finish()
	if err != nil {
		t.Fatal(err)
	}
	tx.Written = &d
}

// The read-back follows the write: before the sink finished, it has read
// what was handed to the slot, and Verify reads only the rest.
func TestReadBackFollowsWrite(t *testing.T) {
	for name, set := range map[string]func(FileSlots) agent.SlotSet{
		"file":     func(s FileSlots) agent.SlotSet { return s },
		"snapshot": func(s FileSlots) agent.SlotSet { return snapshotSlots{s} },
	} {
		t.Run(name, func(t *testing.T) {
			s := newSlots(t, 24<<20)
			r := &Raw{Slots: set(s)}
			img := image(20<<20 + 12345)
			tx := transaction("tx1", img)
			want := int64(16 << 20) // handed over at 8 and 16 MiB (file), synced at 16 MiB (both)
			stream(t, r, tx, img, 16<<20, want)
			if err := r.Verify(context.Background(), tx); err != nil {
				t.Fatal(err)
			}
			if r.rb != nil {
				t.Fatal("read-back kept after Verify")
			}
			// Verify again reads everything: a flipped byte anywhere is found.
			b, _ := os.ReadFile(s.B)
			b[4321] ^= 1
			os.WriteFile(s.B, b, 0o600)
			if err := r.Verify(context.Background(), tx); !errors.Is(err, agent.ErrSlotMismatch) {
				t.Fatalf("verify of a damaged slot: %v", err)
			}
		})
	}
}

// What the read-back covers is the signed length, read from the slot
// after the sink finished, whatever the sink wrote.
func TestReadBackCoversSignedLength(t *testing.T) {
	s := newSlots(t, 24<<20)
	r := &Raw{Slots: s}
	img := image(20 << 20)
	tx := transaction("tx1", img)
	stream(t, r, tx, img[:12<<20], 0, 8<<20)
	err := r.Verify(context.Background(), tx)
	if !errors.Is(err, agent.ErrSlotMismatch) || !strings.Contains(err.Error(), "holds 20971520 bytes") {
		t.Fatalf("verify of a short write: %v, want ErrSlotMismatch over the signed length", err)
	}

}

// A read-back is used only by the Verify of the transaction that wrote the
// slot, after the sink finished; otherwise Verify reads from byte 0.
func TestReadBackNotReused(t *testing.T) {
	s := newSlots(t, 24<<20)
	r := &Raw{Slots: s}
	img := image(10 << 20)
	tx := transaction("tx1", img)
	stream(t, r, tx, img, 0, 8<<20)
	other := transaction("tx2", img)
	if err := r.Verify(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	if r.rb != nil {
		t.Fatal("read-back kept after a Verify of another transaction")
	}

	// Aborted: the read-back stops and is forgotten.
	sink, err := r.Open(context.Background(), tx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write(img[:1<<20]); err != nil {
		t.Fatal(err)
	}
	sink.Abort()
	if r.rb != nil {
		t.Fatal("read-back kept after Abort")
	}
	if err := r.Verify(context.Background(), tx); err != nil {
		t.Fatal(err)
	}

	// Not finished: Verify does not use it.
	sink, err = r.Open(context.Background(), tx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	sink.Abort()
}
