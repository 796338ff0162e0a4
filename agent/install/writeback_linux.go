package install

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing the given range of f
// back to the disk without waiting for it (sync_file_range with
// SYNC_FILE_RANGE_WRITE). It is a hint: it makes nothing durable, and its
// failure is ignored (the next fsync reports any write error).
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
