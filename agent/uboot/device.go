package uboot

import (
	"fmt"
	"io"
	"os"
)

// readCopy reads the raw bytes of one copy. A file too short to hold the copy
// is reported as ErrMalformed: to the reader it is a copy that failed to
// verify, like one with a bad CRC.
func readCopy(loc Location) ([]byte, error) {
	f, err := os.Open(loc.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, loc.Size)
	n, err := f.ReadAt(buf, loc.Offset)
	if n == len(buf) {
		return buf, nil // ReadAt may report io.EOF with a full read
	}
	if err == io.EOF {
		return nil, fmt.Errorf("%w: %d of %d bytes present", ErrMalformed, n, loc.Size)
	}
	return nil, err
}

// writeAtFunc writes b at off; tests replace it to cut power mid-write.
type writeAtFunc func(f *os.File, b []byte, off int64) (int, error)

// writeCopy overwrites one copy in place and fsyncs it before returning, so
// a successful Save is on the medium before the agent reboots into it. The
// file is never created: a missing device is a configuration error, and
// creating a regular file in its place would hide that from the agent while
// U-Boot never sees the write.
func writeCopy(loc Location, b []byte, writeAt writeAtFunc) error {
	f, err := os.OpenFile(loc.Path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	n, err := writeAt(f, b, loc.Offset)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	if err == nil {
		if err = f.Sync(); err != nil {
			err = fmt.Errorf("sync: %w", err)
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
