package agent

import (
	"context"
	"fmt"
	"os"
)

// txLock serialises security operations within the process (a one-slot
// semaphore, so waiting honours the context) and, through a lock file,
// across processes (CCDS UPE10: no two operations interleave between a
// check and the action it justifies).
type txLock struct {
	sem  chan struct{}
	file *os.File
}

func newTxLock(path string) (*txLock, error) {
	l := &txLock{sem: make(chan struct{}, 1)}
	if path == "" {
		return l, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("agent: lock file: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, err
	}
	l.file = f
	return l, nil
}

func (l *txLock) acquire(ctx context.Context) error {
	select {
	case l.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *txLock) release() { <-l.sem }

func (l *txLock) close() error {
	if l.file == nil {
		return nil
	}
	return l.file.Close() // closing the descriptor drops the flock
}
