package agent

import (
	"context"
	"errors"
	"time"
)

// RetryAfter is implemented by Server errors that carry the server's
// Retry-After (HTTP 429/503); the poll loop waits at least that long.
type RetryAfter interface {
	RetryAfter() time.Duration
}

// Back-off bounds for failed polls (EN 303 645 5.9-3).
const (
	backoffBase = 30 * time.Second
	backoffMax  = 6 * time.Hour
	// StartJitter bounds the random delay before the first check-in, so a
	// fleet that lost power together does not reconnect together.
	StartJitter = 60 * time.Second
)

// Run resolves the journal, then polls until ctx ends or a reboot is
// requested: first after a random delay, then at the server's interval
// with jitter, backing off exponentially with full jitter after errors.
// With Integrity.SlotCheck it checks the booted slot alongside, at once
// and then every Integrity.SlotCheckEvery. It returns ErrReboot when the
// caller should let the system go down.
func (e *Engine) Run(ctx context.Context) error {
	if err := e.Start(ctx); err != nil {
		return err
	}
	if e.cfg.Integrity.SlotCheck {
		// Alongside, not before, the first check-in: hashing a large slot
		// at a gentle rate takes minutes.
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); e.slotChecks(cctx) }()
		defer func() { cancel(); <-done }()
	}
	wait := e.jitter(0, StartJitter)
	failures := 0
	for {
		if err := e.cfg.Sleep(ctx, wait); err != nil {
			return err
		}
		next, err := e.Poll(ctx)
		switch {
		case errors.Is(err, ErrReboot):
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			failures++
			e.cfg.Log.Warn("poll failed", "err", err, "failures", failures)
			wait = e.backoff(failures, err)
		default:
			failures = 0
			wait = next
		}
	}
}

// backoff is "full jitter": uniform in [0, min(max, base·2^n)), but never
// shorter than a Retry-After the server sent.
func (e *Engine) backoff(n int, err error) time.Duration {
	ceil := min(backoffBase<<min(n, 20), backoffMax)
	d := e.jitter(0, ceil)
	var ra RetryAfter
	if errors.As(err, &ra) {
		d = max(d, ra.RetryAfter())
	}
	return d
}
