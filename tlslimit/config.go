// Package tlslimit admits TLS handshakes on a listener at the rate the CPU
// can do them (EN 303 645 5.9-3, resilience against denial of service).
//
// net/http runs every accepted connection's handshake at once in its own
// goroutine and bounds it by the server's read timeouts, counted from the
// moment of acceptance. When many thousands of devices reconnect at the same
// instant, the handshakes share the CPU, none finishes in time, and the
// server closes most of them with no answer at all (the devices see EOF).
//
// A Listener instead accepts raw connections, runs their server handshakes
// itself and hands completed *tls.Conn values to Accept. A handshake holds
// one of Config.MaxHandshakes slots while it computes (key exchange,
// signature, client-certificate verification) and gives it back while it
// waits for the client's next flight, so a slow or silent client costs a
// goroutine, not CPU admission. Handshakes already under way get a freed slot
// before new ones, so that admitted work finishes instead of timing out.
// Config.Timeout counts from a handshake's first slot, not from acceptance.
// At most Config.Queue connections are between acceptance and handover;
// beyond that the Listener stops accepting, and the rest wait in the
// kernel's accept backlog (the client's TCP connection is not reset).
package tlslimit

import (
	"fmt"
	"runtime"
	"time"
)

// Config sizes a Listener. Zero fields take the defaults (WithDefaults).
type Config struct {
	// MaxHandshakes is how many handshakes may compute at once; 0 means
	// 4 × GOMAXPROCS.
	MaxHandshakes int
	// Queue bounds the connections accepted and not yet handed to Accept:
	// those waiting for their first slot plus the handshakes under way.
	Queue int
	// Timeout bounds one handshake from its first slot to its end. A
	// connection must also send its first bytes within Timeout of being
	// accepted.
	Timeout time.Duration
	// MaxWait bounds how long an accepted connection may wait for its
	// first slot; it is closed after that.
	MaxWait time.Duration
}

// Defaults and bounds.
const (
	DefaultQueue   = 4096
	DefaultTimeout = 10 * time.Second
	DefaultMaxWait = 30 * time.Second

	MaxHandshakesLimit = 4096
	MaxQueue           = 1 << 20
	MaxTimeout         = 10 * time.Minute
)

// DefaultMaxHandshakes is 4 × GOMAXPROCS: enough to keep every CPU busy
// while some handshakes write their flight, few enough that each one
// finishes in milliseconds.
func DefaultMaxHandshakes() int { return 4 * runtime.GOMAXPROCS(0) }

// WithDefaults fills the zero fields.
func (c Config) WithDefaults() Config {
	if c.MaxHandshakes == 0 {
		c.MaxHandshakes = DefaultMaxHandshakes()
	}
	if c.Queue == 0 {
		c.Queue = DefaultQueue
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	return c
}

// Validate checks a configuration after WithDefaults.
func (c Config) Validate() error {
	if c.MaxHandshakes < 1 || c.MaxHandshakes > MaxHandshakesLimit {
		return fmt.Errorf("tlslimit: concurrent handshakes must be between 1 and %d", MaxHandshakesLimit)
	}
	if c.Queue < 1 || c.Queue > MaxQueue {
		return fmt.Errorf("tlslimit: handshake queue must be between 1 and %d", MaxQueue)
	}
	if c.Timeout <= 0 || c.Timeout > MaxTimeout {
		return fmt.Errorf("tlslimit: handshake timeout must be positive and at most %s", MaxTimeout)
	}
	if c.MaxWait <= 0 || c.MaxWait > MaxTimeout {
		return fmt.Errorf("tlslimit: handshake queue wait must be positive and at most %s", MaxTimeout)
	}
	return nil
}
