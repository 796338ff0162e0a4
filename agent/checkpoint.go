package agent

import "time"

// CheckpointPolicy decides when a resumable download takes a durable
// checkpoint (the sink is synced, then the journal records the offset and
// the hash state): once at least Every bytes AND at least MinInterval have
// passed since the last one.
//
// The bytes bound keeps checkpoints from being needlessly frequent on a slow
// link; the time bound keeps them from being needlessly frequent on a fast
// one. A power cut then costs at most about MinInterval of transfer (or
// Every bytes, whichever is more) to redo, while a fast local install does
// not fsync the slot and rewrite the journal every few megabytes.
type CheckpointPolicy struct {
	// Every is the least number of bytes between checkpoints.
	Every int64
	// MinInterval is the least time between checkpoints; 0 or less
	// checkpoints by bytes only.
	MinInterval time.Duration
	// Now is the clock (time.Now if nil).
	Now func() time.Time

	lastOff int64
	lastAt  time.Time
}

// Start begins counting at off, where the download starts or resumes.
func (p *CheckpointPolicy) Start(off int64) { p.Done(off) }

// Due reports whether a checkpoint should be taken with off bytes written.
func (p *CheckpointPolicy) Due(off int64) bool {
	if off-p.lastOff < p.Every {
		return false
	}
	return p.MinInterval <= 0 || p.now().Sub(p.lastAt) >= p.MinInterval
}

// Done records a checkpoint taken at off.
func (p *CheckpointPolicy) Done(off int64) {
	p.lastOff = off
	if p.MinInterval > 0 {
		p.lastAt = p.now()
	}
}

func (p *CheckpointPolicy) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}
