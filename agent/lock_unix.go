//go:build unix

package agent

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile takes an exclusive flock without waiting: a second agent on the
// same state directory is a configuration error to report, not to wait for.
func lockFile(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("%w: %s", ErrBusy, f.Name())
	}
	if err != nil {
		return fmt.Errorf("agent: lock %s: %w", f.Name(), err)
	}
	return nil
}
