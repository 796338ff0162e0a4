package agent

import (
	"fmt"
	"io"
)

// SlotSet is the pair of A/B system slots (partitions or image files).
type SlotSet interface {
	// Names returns the two slot names, e.g. "A" and "B".
	Names() [2]string
	// Slot opens a slot by name.
	Slot(name string) (Slot, error)
}

// Slot is one system slot. The engine only ever writes the slot that is not
// booted; writes are streamed, and read back for verification before the
// bootloader is switched.
type Slot interface {
	// Size is the slot's capacity in bytes.
	Size() (int64, error)
	// Writer opens the slot for sequential writing starting at offset.
	Writer(offset int64) (SlotWriter, error)
	// Reader opens the slot for reading from its start.
	Reader() (io.ReadCloser, error)
}

// SlotWriter writes a slot sequentially. Sync makes everything written so
// far durable (fsync); Close releases the slot without syncing.
type SlotWriter interface {
	io.Writer
	Sync() error
	Close() error
}

// Other returns the slot of set that is not name.
func Other(set SlotSet, name string) (string, error) {
	n := set.Names()
	switch name {
	case n[0]:
		return n[1], nil
	case n[1]:
		return n[0], nil
	}
	return "", fmt.Errorf("agent: unknown slot %q (have %s, %s)", name, n[0], n[1])
}
