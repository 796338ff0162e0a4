package install

import (
	"bufio"
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
	// Large writes: flash and block layers handle them far better than the
	// 64 KiB the network delivers at a time.
	return &slotWriter{f: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

func (p fileSlot) Reader() (io.ReadCloser, error) { return os.Open(string(p)) }

type slotWriter struct {
	f *os.File
	w *bufio.Writer
}

func (s *slotWriter) Write(p []byte) (int, error) { return s.w.Write(p) }

func (s *slotWriter) Sync() error {
	if err := s.w.Flush(); err != nil {
		return err
	}
	return s.f.Sync()
}

func (s *slotWriter) Close() error { return s.f.Close() }
