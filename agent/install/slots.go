package install

import (
	"fmt"
	"io"
	"os"

	"github.com/koshin-ota/koshin/agent"
)

// FileSlots is an agent.SlotSet of two block devices or image files, e.g.
// {"A": "/dev/mmcblk0p2", "B": "/dev/mmcblk0p3"}. The files must exist;
// the agent never creates or resizes a slot.
type FileSlots struct {
	A, B string // paths of slots "A" and "B"
}

// Names returns "A" and "B".
func (s FileSlots) Names() [2]string { return [2]string{"A", "B"} }

// Slot returns the named slot.
func (s FileSlots) Slot(name string) (agent.Slot, error) {
	switch name {
	case "A":
		return fileSlot(s.A), nil
	case "B":
		return fileSlot(s.B), nil
	}
	return nil, fmt.Errorf("install: unknown slot %q", name)
}

type fileSlot string

// Size seeks to the end, which works for block devices as well as files.
func (p fileSlot) Size() (int64, error) {
	f, err := os.Open(string(p))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Seek(0, io.SeekEnd)
}

func (p fileSlot) Writer(offset int64) (agent.SlotWriter, error) {
	f, err := os.OpenFile(string(p), os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return &slotWriter{f: f, buf: make([]byte, 0, writeChunk), off: offset, started: offset}, nil
}

func (p fileSlot) Reader() (io.ReadCloser, error) { return os.Open(string(p)) }

const (
	// writeChunk is the size of the writes to the slot: flash and block
	// layers handle large writes far better than the 64 KiB the network
	// delivers at a time.
	writeChunk = 1 << 20
	// writebackEvery is how many written bytes the writer lets accumulate
	// before it asks the kernel to start writing them back.
	writebackEvery = 8 << 20
)

// slotWriter writes the slot in writeChunk pieces and starts the
// writeback of every writebackEvery bytes as soon as they are written
// (startWriteback), so that the page cache does not pile up dirty pages
// until the next fsync, which then has little left to do. Starting
// writeback only gets the disk busy early: Sync (fsync) is still what
// makes the data durable, and what the engine waits for before it records
// a checkpoint.
type slotWriter struct {
	f       *os.File
	buf     []byte
	off     int64 // slot offset of buf[0]
	started int64 // writeback started (or synced) up to here
}

func (s *slotWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		c := copy(s.buf[len(s.buf):cap(s.buf)], p)
		s.buf = s.buf[:len(s.buf)+c]
		p = p[c:]
		n += c
		if len(s.buf) == cap(s.buf) {
			if err := s.flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// flush writes the buffer and starts writeback once enough accumulated.
func (s *slotWriter) flush() error {
	if len(s.buf) == 0 {
		return nil
	}
	n, err := s.f.Write(s.buf)
	s.off += int64(n)
	if err != nil {
		// The slot's content past off is unknown; nothing more is written.
		s.buf = s.buf[:0]
		return err
	}
	s.buf = s.buf[:0]
	if s.off-s.started >= writebackEvery {
		startWriteback(s.f, s.started, s.off-s.started)
		s.started = s.off
	}
	return nil
}

// Flush writes what is buffered to the slot, without syncing it.
func (s *slotWriter) Flush() error { return s.flush() }

func (s *slotWriter) Sync() error {
	if err := s.flush(); err != nil {
		return err
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	s.started = s.off
	return nil
}

func (s *slotWriter) Close() error { return s.f.Close() }
