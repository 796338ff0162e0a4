package install

import (
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"sync"

	"github.com/koshin-ota/koshin/agent"
)

// readBack reads a slot back from its start and hashes it in the
// background while the sink is still writing it, so that Verify has only
// the tail left to read: on a device with a second core idle during the
// download, the read-back then costs almost no time.
//
// It never reads past the prefix the sink has handed to the slot (limit),
// and what it computed counts only once the sink finished, i.e. after the
// final fsync: Verify then reads the rest up to the signed length and
// compares the whole slot's hash with the signed digest, exactly as a
// read-back from byte 0 would, before the engine switches anything. Its
// state lives in memory only: after a restart, or when the download
// resumed at an offset, Verify reads the slot back from byte 0 again.
type readBack struct {
	key  readBackKey
	slot agent.Slot

	mu       sync.Mutex
	cond     sync.Cond
	limit    int64 // may read up to here
	done     int64 // read and hashed up to here
	eof      bool  // the slot ended before limit
	err      error
	stopped  bool
	finished bool // the sink finished (synced and closed) with limit bytes
	exited   chan struct{}
	h        hash.Hash
}

// readBackKey identifies what a read-back is for.
type readBackKey struct {
	tx, slot, target string
	want             agent.Digest
}

// readBackChunk is the size of the read-back's reads.
const readBackChunk = 256 << 10

func startReadBack(key readBackKey, slot agent.Slot) *readBack {
	rb := &readBack{key: key, slot: slot, exited: make(chan struct{}), h: sha256.New()}
	rb.cond.L = &rb.mu
	go rb.run()
	return rb
}

// advance lets the read-back go on up to n.
func (rb *readBack) advance(n int64) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if n > rb.limit {
		rb.limit = n
		rb.cond.Broadcast()
	}
}

// finish marks the sink finished with n bytes.
func (rb *readBack) finish(n int64) {
	rb.advance(n)
	rb.mu.Lock()
	rb.finished = true
	rb.mu.Unlock()
}

// stop ends the goroutine and waits for it.
func (rb *readBack) stop() {
	rb.mu.Lock()
	rb.stopped = true
	rb.cond.Broadcast()
	rb.mu.Unlock()
	<-rb.exited
}

// complete reads on up to length (everything is synced by now), stops,
// and returns the number of bytes read and their hash.
func (rb *readBack) complete(length int64) (int64, []byte, error) {
	rb.advance(length)
	rb.mu.Lock()
	for rb.done < length && !rb.eof && rb.err == nil && !rb.stopped {
		rb.cond.Wait()
	}
	if rb.done < length && !rb.eof && rb.err == nil {
		rb.err = errors.New("read-back stopped")
	}
	rb.mu.Unlock()
	rb.stop()
	return rb.done, rb.h.Sum(nil), rb.err
}

func (rb *readBack) run() {
	defer close(rb.exited)
	var buf []byte
	var rc io.ReadCloser
	defer func() {
		if rc != nil {
			rc.Close()
		}
	}()
	for {
		rb.mu.Lock()
		for !rb.stopped && rb.err == nil && !rb.eof && rb.done >= rb.limit {
			rb.cond.Wait()
		}
		if rb.stopped || rb.err != nil || rb.eof {
			rb.mu.Unlock()
			return
		}
		from, to := rb.done, rb.limit
		rb.mu.Unlock()
		if buf == nil {
			buf = make([]byte, readBackChunk)
		}

		var r io.Reader
		if ra, ok := rc.(io.ReaderAt); ok {
			// A file or block device: read on where the last pass ended.
			r = io.NewSectionReader(ra, from, to-from)
		} else {
			// A reader that may not see later writes: open it for each
			// pass and skip what was hashed already.
			var err error
			if rc, err = rb.slot.Reader(); err != nil {
				rc = nil
				rb.fail(err)
				return
			}
			if _, ok := rc.(io.ReaderAt); ok {
				r = io.NewSectionReader(rc.(io.ReaderAt), from, to-from)
			} else if _, err := io.CopyN(io.Discard, rc, from); err != nil {
				rb.fail(err)
				return
			} else {
				r = io.LimitReader(rc, to-from)
			}
		}
		for {
			n, err := io.ReadFull(r, buf[:min(int64(len(buf)), to-from)])
			rb.h.Write(buf[:n])
			from += int64(n)
			rb.mu.Lock()
			rb.done = from
			switch {
			case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
				if from < to {
					rb.eof = true
				}
			case err != nil:
				rb.err = err
			}
			rb.cond.Broadcast()
			quit := rb.eof || rb.err != nil || rb.stopped || from >= to
			rb.mu.Unlock()
			if quit {
				break
			}
		}
		if _, ok := rc.(io.ReaderAt); !ok && rc != nil {
			rc.Close() // opened again for the next pass
			rc = nil
		}
		rb.mu.Lock()
		if rb.finished && rb.done >= rb.limit {
			buf = nil // caught up with a finished sink: wait for Verify without it
		}
		rb.mu.Unlock()
	}
}

func (rb *readBack) fail(err error) {
	rb.mu.Lock()
	rb.err = err
	rb.cond.Broadcast()
	rb.mu.Unlock()
}
