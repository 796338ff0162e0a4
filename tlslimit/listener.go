package tlslimit

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Listener accepts raw connections from an inner listener, runs their TLS
// server handshakes under the admission limits of its Config, and returns
// the completed *tls.Conn values from Accept. http.Server.Serve takes it
// like the listener of tls.NewListener: it finds the handshake done, and
// reads the negotiated protocol and peer certificates from the connection
// state.
type Listener struct {
	inner  net.Listener
	config *tls.Config
	cfg    Config
	gate   *gate

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	ready  chan *tls.Conn // completed handshakes, to Accept
	failed chan struct{}  // closed when the inner listener fails

	mu        sync.Mutex
	cond      *sync.Cond // signalled when pending falls or on Close
	pending   int        // accepted, not yet handed to Accept
	closed    bool
	acceptErr error // the inner listener's fatal error
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup

	queued, inFlight                      atomic.Int64
	completed, failures, timeouts, waited atomic.Uint64
}

// Stats is a snapshot of a Listener's state and counters.
type Stats struct {
	// Busy is how many handshake slots are taken (at most MaxHandshakes).
	Busy int
	// InFlight counts handshakes under way: computing or waiting for the
	// client's next flight.
	InFlight int
	// Queued counts accepted connections that have not started their
	// handshake (waiting for their first bytes or their first slot).
	Queued int
	// Completed, Failed, TimedOut and Expired count handshakes since the
	// start: completed; failed (bad client, refused certificate, closed
	// connection); stopped by Timeout; closed after MaxWait in the queue.
	Completed, Failed, TimedOut, Expired uint64
}

// NewListener starts accepting from inner. The TLS configuration is
// cloned; it must have the server certificate and, for HTTP/2, the ALPN
// protocols (NextProtos) the HTTP server expects.
func NewListener(inner net.Listener, config *tls.Config, cfg Config) (*Listener, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if config == nil {
		return nil, errors.New("tlslimit: no TLS configuration")
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{
		inner: inner, config: config.Clone(), cfg: cfg, gate: newGate(cfg.MaxHandshakes),
		ctx: ctx, cancel: cancel, ready: make(chan *tls.Conn), failed: make(chan struct{}),
	}
	l.cond = sync.NewCond(&l.mu)
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// Config is the effective configuration (defaults filled).
func (l *Listener) Config() Config { return l.cfg }

// Accept returns the next connection whose handshake completed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.ctx.Done():
		return nil, &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: net.ErrClosed}
	case <-l.failed:
		return nil, l.acceptErr
	}
}

// Close stops accepting, closes the inner listener and every connection
// not yet handed to Accept, and waits for the Listener's goroutines.
// Connections already returned by Accept stay open.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.cond.Broadcast()
		l.mu.Unlock()
		l.cancel()
		l.closeErr = l.inner.Close()
		l.wg.Wait()
	})
	return l.closeErr
}

// Addr is the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Stats reads the current state and counters.
func (l *Listener) Stats() Stats {
	return Stats{
		Busy: l.gate.busy(), InFlight: int(l.inFlight.Load()), Queued: int(l.queued.Load()),
		Completed: l.completed.Load(), Failed: l.failures.Load(), TimedOut: l.timeouts.Load(), Expired: l.waited.Load(),
	}
}

// acceptLoop accepts while fewer than cfg.Queue connections are pending;
// beyond that new connections wait in the kernel's backlog.
func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		l.mu.Lock()
		for l.pending >= l.cfg.Queue && !l.closed {
			l.cond.Wait()
		}
		closed := l.closed
		l.mu.Unlock()
		if closed {
			return
		}
		raw, err := l.inner.Accept()
		if err != nil {
			if l.ctx.Err() != nil {
				return
			}
			// Like http.Server: back off on temporary errors (out of file
			// descriptors), give up on the others.
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(delay):
					continue
				case <-l.ctx.Done():
					return
				}
			}
			l.acceptErr = err
			close(l.failed)
			return
		}
		delay = 0
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			raw.Close()
			return
		}
		l.pending++
		l.mu.Unlock()
		l.queued.Add(1)
		l.wg.Add(1)
		go l.handshake(raw)
	}
}

// handshake runs one connection's server handshake and hands it to Accept.
func (l *Listener) handshake(raw net.Conn) {
	defer l.wg.Done()
	defer l.leave()
	c := &conn{Conn: raw, l: l, accepted: time.Now()}
	// The client's first bytes are due within Timeout of acceptance; the
	// handshake's own deadline is set when it gets its first slot.
	raw.SetDeadline(c.accepted.Add(l.cfg.Timeout))
	tc := tls.Server(c, l.config)
	err := tc.HandshakeContext(l.ctx)
	c.finish()
	if err == nil {
		err = raw.SetDeadline(time.Time{})
	}
	if err != nil {
		l.count(c, err) // before the client can see the close
		raw.Close()
		return
	}
	l.completed.Add(1)
	select {
	case l.ready <- tc:
	case <-l.ctx.Done():
		raw.Close()
	}
}

// count classifies a failed handshake.
func (l *Listener) count(c *conn, err error) {
	switch {
	case l.ctx.Err() != nil:
		// Closing: not the client's doing.
	case c.expired:
		l.waited.Add(1)
	case c.timedOut || errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err):
		l.timeouts.Add(1)
	default:
		l.failures.Add(1)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// leave ends a pending connection's stay.
func (l *Listener) leave() {
	l.mu.Lock()
	l.pending--
	l.cond.Signal()
	l.mu.Unlock()
}

// conn is the raw connection under a handshake. During the handshake it
// gives the slot back before each read from the network and takes one
// again when data arrived; after it, it passes everything through.
type conn struct {
	net.Conn
	l        *Listener
	accepted time.Time
	deadline time.Time // the handshake's, from its first slot
	over     atomic.Bool

	// Used by the handshake's goroutine only.
	started, holding, expired, timedOut bool
}

func (c *conn) Read(p []byte) (int, error) {
	if c.over.Load() {
		return c.Conn.Read(p)
	}
	c.releaseSlot()
	n, err := c.Conn.Read(p)
	if err != nil || n == 0 {
		return n, err
	}
	if err := c.takeSlot(); err != nil {
		return n, err
	}
	return n, nil
}

// takeSlot waits for a slot: a new handshake until MaxWait after
// acceptance, behind every handshake under way; a handshake under way until
// its deadline.
func (c *conn) takeSlot() error {
	l := c.l
	if c.started {
		if err := l.gate.acquire(true, c.deadline, l.ctx.Done()); err != nil {
			c.timedOut = err == errWaited
			return err
		}
		c.holding = true
		return nil
	}
	if err := l.gate.acquire(false, c.accepted.Add(l.cfg.MaxWait), l.ctx.Done()); err != nil {
		c.expired = err == errWaited
		return err
	}
	c.started, c.holding = true, true
	l.queued.Add(-1)
	l.inFlight.Add(1)
	c.deadline = time.Now().Add(l.cfg.Timeout)
	if err := c.Conn.SetDeadline(c.deadline); err != nil {
		return err
	}
	return nil
}

func (c *conn) releaseSlot() {
	if c.holding {
		c.holding = false
		c.l.gate.release()
	}
}

// finish ends the handshake: the slot is given back and the connection
// passes reads through from now on.
func (c *conn) finish() {
	c.releaseSlot()
	c.over.Store(true)
	if c.started {
		c.l.inFlight.Add(-1)
	} else {
		c.l.queued.Add(-1)
	}
}
