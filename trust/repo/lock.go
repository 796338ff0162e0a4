package repo

import (
	"fmt"
	"os"
	"syscall"
)

// lock takes an exclusive, non-blocking flock on DIR/.lock. Two commands
// editing the same workspace at once would each write from their own view
// of it and lose the other's change; failing fast with ErrBusy is clearer
// than waiting. The kernel drops the lock if the process dies.
func lock(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if err == syscall.EWOULDBLOCK {
			return nil, fmt.Errorf("%w (%s)", ErrBusy, name)
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return f, nil
}
