package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/koshin-ota/koshin/agent"
)

// Raw installs raw images into the inactive slot. A target whose name ends
// in ".zst" is a zstd stream and is decompressed on the way into the slot;
// anything else is written as it arrives. (The name is covered by the
// targets signatures, so the choice is signed.)
type Raw struct {
	Slots agent.SlotSet
	// MaxWindow bounds the zstd window, i.e. the decoder's memory
	// (default 8 MiB; the encoder must use a window no larger).
	MaxWindow uint64

	mu sync.Mutex
	rb *readBack // of the last plain image written from byte 0, until Verify
}

var _ agent.Installer = (*Raw)(nil)

// Reboots: a raw image takes effect by booting its slot.
func (r *Raw) Reboots() bool { return true }

// Resumable: plain images resume into the slot after a restart; the
// read-back in Verify covers bytes written before the restart.
func (r *Raw) Resumable(t agent.Target) bool { return !compressed(t.Name) && !t.Encrypted() }

func compressed(name string) bool { return strings.HasSuffix(name, ".zst") }

// Open opens the inactive slot at offset.
func (r *Raw) Open(_ context.Context, tx *agent.Transaction, offset int64) (agent.Sink, error) {
	if tx.Slot == "" || tx.Slot == tx.FromSlot {
		return nil, fmt.Errorf("install: refusing to write slot %q while booted from %q", tx.Slot, tx.FromSlot)
	}
	slot, err := r.Slots.Slot(tx.Slot)
	if err != nil {
		return nil, err
	}
	size, err := slot.Size()
	if err != nil {
		return nil, err
	}
	if n := tx.Target.Plain().Length; !compressed(tx.Target.Name) && n > size {
		return nil, fmt.Errorf("%w: image of %d bytes, slot %s holds %d", agent.ErrUnusable, n, tx.Slot, size)
	}
	r.setReadBack(nil)
	w, err := slot.Writer(offset)
	if err != nil {
		return nil, err
	}
	capped := &capWriter{w: w, room: size - offset}
	if compressed(tx.Target.Name) {
		return newZstdSink(w, capped, r.maxWindow())
	}
	s := &plainSink{w: w, capped: capped, n: offset, r: r}
	if offset == 0 {
		// Read the slot back while it is written (see readBack); a
		// download resumed at an offset is read back by Verify from byte
		// 0, since what this run did not write was not read back in it.
		s.rb = startReadBack(readBackKey{tx: tx.ID, slot: tx.Slot, target: tx.Target.Name, want: tx.Target.Plain()}, slot)
		r.setReadBack(s.rb)
	}
	return s, nil
}

// setReadBack replaces the pending read-back, stopping the previous one.
func (r *Raw) setReadBack(rb *readBack) {
	r.mu.Lock()
	old := r.rb
	r.rb = rb
	r.mu.Unlock()
	if old != nil && old != rb {
		old.stop()
	}
}

// dropReadBack stops rb and forgets it if it is the pending one.
func (r *Raw) dropReadBack(rb *readBack) {
	r.mu.Lock()
	if r.rb == rb {
		r.rb = nil
	}
	r.mu.Unlock()
	rb.stop()
}

// takeReadBack returns the pending read-back if it covers key's write and
// the sink finished it, and forgets it either way.
func (r *Raw) takeReadBack(key readBackKey) *readBack {
	r.mu.Lock()
	rb := r.rb
	r.rb = nil
	r.mu.Unlock()
	if rb == nil {
		return nil
	}
	rb.mu.Lock()
	ok := rb.key == key && rb.finished && rb.limit <= key.want.Length
	rb.mu.Unlock()
	if !ok {
		rb.stop()
		return nil
	}
	return rb
}

func (r *Raw) maxWindow() uint64 {
	if r.MaxWindow == 0 {
		return 8 << 20
	}
	return r.MaxWindow
}

// Verify reads the slot back: an image written as it came must hash to the
// signed digest (of the plaintext, for an encrypted release), a
// decompressed one to the digest taken while it was written. The slot's
// first want.Length bytes are always read back and hashed in this run: for
// a plain image written from byte 0 by this Raw, most of them were read
// back while it was being written (see readBack), and only the rest is
// read here.
func (r *Raw) Verify(_ context.Context, tx *agent.Transaction) error {
	want := tx.Target.Plain()
	if compressed(tx.Target.Name) {
		if tx.Written == nil || tx.Written.SHA256 == "" {
			return fmt.Errorf("%w: no digest recorded for the decompressed image", agent.ErrSlotMismatch)
		}
		want = *tx.Written
	}
	var (
		n   int64
		sum []byte
		err error
	)
	if rb := r.takeReadBack(readBackKey{tx: tx.ID, slot: tx.Slot, target: tx.Target.Name, want: want}); rb != nil {
		n, sum, err = rb.complete(want.Length)
	} else {
		slot, err := r.Slots.Slot(tx.Slot)
		if err != nil {
			return err
		}
		rc, err := slot.Reader()
		if err != nil {
			return err
		}
		defer rc.Close()
		h := sha256.New()
		n, err = io.Copy(h, io.LimitReader(rc, want.Length))
		if err != nil {
			return fmt.Errorf("read back slot %s: %w", tx.Slot, err)
		}
		sum = h.Sum(nil)
	}
	if err != nil {
		return fmt.Errorf("read back slot %s: %w", tx.Slot, err)
	}
	if got := hex.EncodeToString(sum); n != want.Length || got != want.SHA256 {
		return fmt.Errorf("%w: slot %s holds %d bytes hashing to %.16s…, want %d bytes %.16s…", agent.ErrSlotMismatch, tx.Slot, n, got, want.Length, want.SHA256)
	}
	return nil
}

// Install, Commit and Rollback have nothing to do: the engine switches the
// bootloader, and an abandoned slot is simply overwritten next time.
func (r *Raw) Install(context.Context, *agent.Transaction) error  { return nil }
func (r *Raw) Commit(context.Context, *agent.Transaction) error   { return nil }
func (r *Raw) Rollback(context.Context, *agent.Transaction) error { return nil }

// capWriter refuses to write past the slot's end.
type capWriter struct {
	w    io.Writer
	room int64
}

func (c *capWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.room {
		return 0, fmt.Errorf("%w: image larger than the slot", agent.ErrUnusable)
	}
	n, err := c.w.Write(p)
	c.room -= int64(n)
	return n, err
}

// plainSink writes the stream unchanged.
type plainSink struct {
	w      agent.SlotWriter
	capped *capWriter
	n      int64
	r      *Raw
	rb     *readBack // nil unless written from byte 0
	handed int64     // the read-back may read up to here
}

// flusher is a SlotWriter that can hand what it buffered to the slot
// without syncing it (a file or block device: to the kernel, whose page
// cache is what a read of the slot returns).
type flusher interface{ Flush() error }

// readBackStep is how far the sink lets the read-back follow the write.
const readBackStep = 8 << 20

func (s *plainSink) Write(p []byte) (int, error) {
	n, err := s.capped.Write(p)
	s.n += int64(n)
	if err == nil && s.rb != nil && s.n-s.handed >= readBackStep {
		if f, ok := s.w.(flusher); ok {
			if err := f.Flush(); err != nil {
				return n, err
			}
			s.handed = s.n
			s.rb.advance(s.n)
		}
	}
	return n, err
}

func (s *plainSink) Sync() error {
	if err := s.w.Sync(); err != nil {
		return err
	}
	if s.rb != nil {
		s.handed = s.n
		s.rb.advance(s.n)
	}
	return nil
}

// Finish reports the length only; the signed digest covers the content.
func (s *plainSink) Finish() (agent.Digest, error) {
	err := s.w.Sync()
	if cerr := s.w.Close(); err == nil {
		err = cerr
	}
	if s.rb != nil {
		if err == nil {
			s.rb.finish(s.n)
		} else {
			s.r.dropReadBack(s.rb)
		}
	}
	return agent.Digest{Length: s.n}, err
}

func (s *plainSink) Abort() error {
	if s.rb != nil {
		s.r.dropReadBack(s.rb)
	}
	return s.w.Close()
}
