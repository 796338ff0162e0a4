package agenttest

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/trust/trusttest"
)

// ErrDropped is the error of a connection the Fetcher cut.
var ErrDropped = errors.New("agenttest: connection reset")

// Fetcher wraps a real fetcher with a bad network: connections that drop
// after DropAfter bytes, Opens that fail, reads of at most Chunk bytes, and
// a clock advanced by Step per read (a slow link, for the watchdog). It
// counts the bytes it served.
type Fetcher struct {
	F         agent.Fetcher
	DropAfter int64
	FailOpens int
	Chunk     int
	Clock     *trusttest.Clock
	Step      time.Duration
	// Link, if set, is the device's injector: no power, no network.
	Link *Injector

	mu      sync.Mutex
	served  int64
	offsets []int64
}

var _ agent.Fetcher = (*Fetcher)(nil)

// Open implements agent.Fetcher.
func (f *Fetcher) Open(ctx context.Context, url string, offset int64) (io.ReadCloser, error) {
	if f.Link != nil {
		if err := f.Link.Alive(); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	f.offsets = append(f.offsets, offset)
	fail := f.FailOpens > 0
	if fail {
		f.FailOpens--
	}
	f.mu.Unlock()
	if fail {
		return nil, ErrDropped
	}
	rc, err := f.F.Open(ctx, url, offset)
	if err != nil {
		return nil, err
	}
	return &conn{f: f, rc: rc, left: f.DropAfter}, nil
}

// Served returns the payload bytes delivered so far.
func (f *Fetcher) Served() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.served
}

// Offsets returns the offset of every Open, in order.
func (f *Fetcher) Offsets() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.offsets...)
}

type conn struct {
	f    *Fetcher
	rc   io.ReadCloser
	left int64 // bytes before the drop; 0 with DropAfter 0 means never
}

func (c *conn) Read(p []byte) (int, error) {
	if c.f.DropAfter > 0 {
		if c.left <= 0 {
			return 0, ErrDropped
		}
		p = p[:min(int64(len(p)), c.left)]
	}
	if c.f.Chunk > 0 && len(p) > c.f.Chunk {
		p = p[:c.f.Chunk]
	}
	if c.f.Clock != nil {
		c.f.Clock.Advance(c.f.Step)
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	c.f.mu.Lock()
	c.f.served += int64(n)
	c.f.mu.Unlock()
	return n, err
}

func (c *conn) Close() error { return c.rc.Close() }
