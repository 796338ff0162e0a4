package agenttest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"

	"github.com/koshin-ota/koshin/agent"
)

// Slots are two file-backed slots of fixed size with a page-cache model:
// writes stay pending in memory (visible to readers) until a Sync, a clean
// reboot (Flush) or a power cut, which keeps pending bytes only up to a
// random offset. Every Write and Sync is a power-cut point ("slot X write",
// "slot X sync").
type Slots struct {
	Dir   string
	Size  int64
	Inj   *Injector
	mu    sync.Mutex
	dirty map[string][]pending
}

type pending struct {
	off  int64
	data []byte
}

var _ agent.SlotSet = (*Slots)(nil)

// NewSlots creates slot files A and B holding a and b (zero-padded).
func NewSlots(dir string, size int64, inj *Injector, a, b []byte) (*Slots, error) {
	s := &Slots{Dir: dir, Size: size, Inj: inj, dirty: map[string][]pending{}}
	for name, content := range map[string][]byte{"A": a, "B": b} {
		if int64(len(content)) > size {
			return nil, fmt.Errorf("agenttest: slot %s content larger than %d", name, size)
		}
		buf := make([]byte, size)
		copy(buf, content)
		if err := os.WriteFile(s.path(name), buf, 0o600); err != nil {
			return nil, err
		}
	}
	inj.Register(s)
	return s, nil
}

// Names returns A and B.
func (s *Slots) Names() [2]string { return [2]string{"A", "B"} }

// Slot returns a slot.
func (s *Slots) Slot(name string) (agent.Slot, error) {
	if name != "A" && name != "B" {
		return nil, fmt.Errorf("agenttest: no slot %q", name)
	}
	return &slot{s: s, name: name}, nil
}

func (s *Slots) path(name string) string { return filepath.Join(s.Dir, "slot-"+name+".img") }

// Bytes returns the slot's content as a reader would see it.
func (s *Slots) Bytes(name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := os.ReadFile(s.path(name))
	if err != nil {
		return nil, err
	}
	for _, p := range s.dirty[name] {
		copy(b[p.off:], p.data)
	}
	return b, nil
}

// SHA256 returns the hex SHA-256 of the slot's first n bytes.
func (s *Slots) SHA256(name string, n int) (string, error) {
	b, err := s.Bytes(name)
	if err != nil {
		return "", err
	}
	if n > len(b) {
		return "", fmt.Errorf("agenttest: slot %s shorter than %d", name, n)
	}
	sum := sha256.Sum256(b[:n])
	return hex.EncodeToString(sum[:]), nil
}

// PowerLoss keeps each slot's pending writes up to a random byte offset.
func (s *Slots) PowerLoss(rng *rand.Rand) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, ps := range s.dirty {
		var total int
		for _, p := range ps {
			total += len(p.data)
		}
		keep := rng.IntN(total + 1)
		var kept []pending
		for _, p := range ps {
			if keep <= 0 {
				break
			}
			n := min(keep, len(p.data))
			kept = append(kept, pending{p.off, p.data[:n]})
			keep -= n
		}
		s.writeBack(name, kept)
		delete(s.dirty, name)
	}
}

// Flush writes every pending byte (clean reboot).
func (s *Slots) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, ps := range s.dirty {
		if err := s.writeBack(name, ps); err != nil {
			return err
		}
		delete(s.dirty, name)
	}
	return nil
}

func (s *Slots) writeBack(name string, ps []pending) error {
	f, err := os.OpenFile(s.path(name), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range ps {
		if _, err := f.WriteAt(p.data, p.off); err != nil {
			return err
		}
	}
	return nil
}

type slot struct {
	s    *Slots
	name string
}

func (sl *slot) Size() (int64, error) { return sl.s.Size, sl.s.Inj.Alive() }

func (sl *slot) Writer(offset int64) (agent.SlotWriter, error) {
	if err := sl.s.Inj.Alive(); err != nil {
		return nil, err
	}
	return &slotWriter{sl: sl, off: offset}, nil
}

func (sl *slot) Reader() (io.ReadCloser, error) {
	if err := sl.s.Inj.Alive(); err != nil {
		return nil, err
	}
	b, err := sl.s.Bytes(sl.name)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

type slotWriter struct {
	sl  *slot
	off int64
}

func (w *slotWriter) Write(p []byte) (int, error) {
	s := w.sl.s
	if err := s.Inj.Alive(); err != nil {
		return 0, err
	}
	if w.off+int64(len(p)) > s.Size {
		return 0, fmt.Errorf("agenttest: write past the end of slot %s", w.sl.name)
	}
	// The chunk enters the page cache first, so that a cut at this point
	// keeps it up to a random byte, like everything else unsynced.
	s.mu.Lock()
	s.dirty[w.sl.name] = append(s.dirty[w.sl.name], pending{w.off, bytes.Clone(p)})
	s.mu.Unlock()
	if err := s.Inj.Point("slot " + w.sl.name + " write"); err != nil {
		return 0, err
	}
	w.off += int64(len(p))
	return len(p), nil
}

func (w *slotWriter) Sync() error {
	s := w.sl.s
	if err := s.Inj.Point("slot " + w.sl.name + " sync"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.writeBack(w.sl.name, s.dirty[w.sl.name])
	delete(s.dirty, w.sl.name)
	return err
}

func (w *slotWriter) Close() error { return nil }
