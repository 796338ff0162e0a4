package trusttest

import (
	"io"
	"sync"
	"time"
)

// Clock is a manual clock for verification code that takes Now functions.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// SlowReader delivers at most Chunk bytes per Read from R and advances
// Clock by Step on every Read: a deterministic slow server.
type SlowReader struct {
	R     io.Reader
	Clock *Clock
	Chunk int
	Step  time.Duration
}

func (s *SlowReader) Read(p []byte) (int, error) {
	s.Clock.Advance(s.Step)
	if s.Chunk > 0 && len(p) > s.Chunk {
		p = p[:s.Chunk]
	}
	return s.R.Read(p)
}
