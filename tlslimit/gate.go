package tlslimit

import (
	"container/list"
	"errors"
	"sync"
	"time"
)

// errWaited is a handshake's wait for a slot running out.
var errWaited = errors.New("tlslimit: no handshake slot in time")

// errClosing is a wait for a slot cut short by Close.
var errClosing = errors.New("tlslimit: listener closed")

// gate is a counting semaphore of handshake slots. Its waiters are served in
// two FIFO classes: handshakes already under way first, then new ones. A
// freed slot goes straight to the next waiter, so free > 0 only while
// nobody waits.
type gate struct {
	mu             sync.Mutex
	size, free     int
	ongoing, fresh list.List // of *waiter
}

type waiter struct {
	ready   chan struct{} // closed when granted
	granted bool
	queue   *list.List
	elem    *list.Element
}

func newGate(size int) *gate {
	return &gate{size: size, free: size}
}

// acquire takes a slot, waiting until deadline at most; ongoing puts the
// caller ahead of every new handshake.
func (g *gate) acquire(ongoing bool, deadline time.Time, done <-chan struct{}) error {
	g.mu.Lock()
	if g.free > 0 {
		g.free--
		g.mu.Unlock()
		return nil
	}
	w := &waiter{ready: make(chan struct{}), queue: &g.fresh}
	if ongoing {
		w.queue = &g.ongoing
	}
	w.elem = w.queue.PushBack(w)
	g.mu.Unlock()

	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	var err error
	select {
	case <-w.ready:
		return nil
	case <-t.C:
		err = errWaited
	case <-done:
		err = errClosing
	}
	g.mu.Lock()
	if w.granted {
		// Granted while giving up: pass the slot on.
		g.releaseLocked()
	} else {
		w.queue.Remove(w.elem)
	}
	g.mu.Unlock()
	return err
}

// release gives a slot back.
func (g *gate) release() {
	g.mu.Lock()
	g.releaseLocked()
	g.mu.Unlock()
}

func (g *gate) releaseLocked() {
	for _, q := range []*list.List{&g.ongoing, &g.fresh} {
		if e := q.Front(); e != nil {
			w := q.Remove(e).(*waiter)
			w.granted = true
			close(w.ready)
			return
		}
	}
	g.free++
}

// busy is how many slots are taken.
func (g *gate) busy() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.size - g.free
}
