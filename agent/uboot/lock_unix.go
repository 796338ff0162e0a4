//go:build unix

package uboot

import (
	"fmt"
	"os"
	"syscall"
)

// lock takes the exclusive flock libubootenv also takes, so a concurrent
// fw_setenv waits for us and we wait for it. An empty path means no locking.
func lock(path string) (unlock func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing releases the flock
}
