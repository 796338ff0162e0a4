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
	return newSlotWriter(f, offset), nil
}

func (p fileSlot) Reader() (io.ReadCloser, error) { return os.Open(string(p)) }

const (
	// writeChunk is the size of the writes to the slot: flash and block
	// layers handle large writes far better than the 64 KiB the network
	// delivers at a time.
	writeChunk = 1 << 20
	// writeDepth is how many chunks may wait for the slot while the
	// stream goes on.
	writeDepth = 2
	// writebackEvery is how many written bytes the writer lets accumulate
	// before it asks the kernel to start writing them back.
	writebackEvery = 8 << 20
)

// slotWriter writes the slot in writeChunk pieces from a goroutine of its
// own, so that copying into the page cache overlaps with the stream's
// reading and hashing instead of following it (on a device with a second
// core, the write then costs almost no time). At most writeDepth chunks
// are in flight; Flush, Sync and Close wait until they are in the slot,
// and the first write error is returned by every later call.
//
// It starts the writeback of every writebackEvery bytes as soon as they
// are written (startWriteback), so that the page cache does not pile up
// dirty pages until the next fsync, which then has little left to do.
// Starting writeback only gets the disk busy early: Sync (fsync) is still
// what makes the data durable, and what the engine waits for before it
// records a checkpoint.
type slotWriter struct {
	f   *os.File
	buf []byte

	todo  chan []byte // chunks for the writing goroutine
	spare chan []byte // emptied chunks back from it
	idle  chan error  // the goroutine's answer to a drain: its error
	quit  chan struct{}
	shut  bool // Close was called

	// Owned by the writing goroutine until a drain returns.
	off     int64 // slot offset written up to
	started int64 // writeback started (or synced) up to here
	err     error
}

func newSlotWriter(f *os.File, offset int64) *slotWriter {
	s := &slotWriter{f: f, buf: make([]byte, 0, writeChunk), off: offset, started: offset,
		todo: make(chan []byte, writeDepth), spare: make(chan []byte, writeDepth+1),
		idle: make(chan error), quit: make(chan struct{})}
	for range writeDepth {
		s.spare <- make([]byte, 0, writeChunk)
	}
	go s.run()
	return s
}

// run writes chunks in order until quit; a nil chunk asks for the error
// so far, once everything before it is written.
func (s *slotWriter) run() {
	for {
		select {
		case b := <-s.todo:
			if b == nil {
				s.idle <- s.err
				continue
			}
			s.write(b)
			s.spare <- b[:0]
		case <-s.quit:
			return
		}
	}
}

// write puts one chunk into the slot, unless an earlier one failed: the
// slot's content past off is unknown then, and nothing more is written.
func (s *slotWriter) write(b []byte) {
	if s.err != nil {
		return
	}
	n, err := s.f.Write(b)
	s.off += int64(n)
	if err != nil {
		s.err = err
		return
	}
	if s.off-s.started >= writebackEvery {
		startWriteback(s.f, s.started, s.off-s.started)
		s.started = s.off
	}
}

func (s *slotWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		c := copy(s.buf[len(s.buf):cap(s.buf)], p)
		s.buf = s.buf[:len(s.buf)+c]
		p = p[c:]
		n += c
		if len(s.buf) == cap(s.buf) {
			s.hand()
		}
	}
	return n, nil
}

// hand gives the buffered chunk to the writing goroutine and takes an
// empty one, waiting while writeDepth chunks are in flight.
func (s *slotWriter) hand() {
	if len(s.buf) == 0 {
		return
	}
	s.todo <- s.buf
	s.buf = <-s.spare
}

// drain waits until everything handed over is in the slot and returns
// the first write error.
func (s *slotWriter) drain() error {
	s.hand()
	s.todo <- nil
	return <-s.idle
}

// Flush writes what is buffered to the slot, without syncing it.
func (s *slotWriter) Flush() error { return s.drain() }

func (s *slotWriter) Sync() error {
	if err := s.drain(); err != nil {
		return err
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	s.started = s.off
	return nil
}

// Close stops the writing goroutine after what was handed over; bytes
// still buffered and not flushed are dropped, as an unflushed write is.
func (s *slotWriter) Close() error {
	if s.shut {
		return os.ErrClosed
	}
	s.shut = true
	s.todo <- nil
	<-s.idle
	close(s.quit)
	return s.f.Close()
}
