package verify

import (
	"fmt"
	"time"

	"github.com/koshin-ota/koshin/trust"
)

// rateMeter enforces a minimum throughput measured over windows of wall time
// read from an injected clock (slow-retrieval attack: a server that trickles
// bytes to hold a device in the download state forever). A zero rate or
// window disables it.
type rateMeter struct {
	min    int64 // bytes per second
	window time.Duration
	now    func() time.Time

	started bool
	start   time.Time
	bytes   int64
}

func newRateMeter(min int64, window time.Duration, now func() time.Time) rateMeter {
	if now == nil {
		now = time.Now
	}
	return rateMeter{min: min, window: window, now: now}
}

func (m *rateMeter) enabled() bool { return m.min > 0 && m.window > 0 }

// begin starts the first window just before the first read, so the time a
// caller spends before reading does not count against the server.
func (m *rateMeter) begin() {
	if m.enabled() && !m.started {
		m.start, m.started = m.now(), true
	}
}

// add records n bytes and fails when a completed window fell short.
func (m *rateMeter) add(n int) error {
	if !m.enabled() {
		return nil
	}
	m.bytes += int64(n)
	t := m.now()
	elapsed := t.Sub(m.start)
	if elapsed < m.window {
		return nil
	}
	if float64(m.bytes) < float64(m.min)*elapsed.Seconds() {
		return fmt.Errorf("%w: %d bytes in %s, need %d bytes/s", trust.ErrTooSlow, m.bytes, elapsed, m.min)
	}
	m.start, m.bytes = t, 0
	return nil
}
