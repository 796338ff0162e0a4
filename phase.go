package koshin

import (
	"math"
	"time"
)

// Limits of phase fields.
const (
	MaxSoak       = 30 * 24 * time.Hour
	MaxPhaseCount = 10_000_000
)

// Phase is one step of a rollout. Its size is cumulative: Percent (of the
// eligible devices, up to two decimals) or Count says how many devices have
// been assigned in total once this phase is done. A canary of 1% followed by
// 10%, 50% and 100% is four phases.
type Phase struct {
	Percent float64 `json:"percent,omitempty"`
	Count   int     `json:"count,omitempty"`
	// Soak is how long to watch the finished phase before moving on.
	Soak time.Duration `json:"soak,omitempty"`
	// Manual phases wait for an operator to advance; others advance on
	// their own once finished and soaked.
	Manual bool `json:"manual,omitempty"`
	// Threshold overrides the rollout's failure threshold for this phase.
	Threshold *Threshold `json:"threshold,omitempty"`
}

// Validate checks one phase.
func (p *Phase) Validate() error {
	if (p.Percent > 0) == (p.Count > 0) || p.Percent < 0 || p.Count < 0 {
		return Errorf(EINVALID, "A phase needs either a percentage or a count.")
	}
	if p.Percent > 100 || math.IsNaN(p.Percent) {
		return Errorf(EINVALID, "A phase percentage must be at most 100.")
	}
	if bp := p.Percent * 100; math.Abs(bp-math.Round(bp)) > 1e-6 {
		return Errorf(EINVALID, "A phase percentage has at most two decimals.")
	}
	if p.Count > MaxPhaseCount {
		return Errorf(EINVALID, "A phase count must be at most %d.", MaxPhaseCount)
	}
	if p.Soak < 0 || p.Soak > MaxSoak {
		return Errorf(EINVALID, "Soak time must be between 0 and %s.", MaxSoak)
	}
	if p.Threshold != nil {
		return p.Threshold.Validate(true)
	}
	return nil
}

func validatePhases(phases []Phase) error {
	if len(phases) == 0 || len(phases) > MaxPhases {
		return Errorf(EINVALID, "A rollout needs 1-%d phases.", MaxPhases)
	}
	var lastPct float64
	var lastCount int
	for i := range phases {
		p := &phases[i]
		if err := p.Validate(); err != nil {
			return err
		}
		if p.Percent > 0 && p.Percent < lastPct || p.Count > 0 && p.Count < lastCount {
			return Errorf(EINVALID, "Phase sizes are cumulative and must not shrink.")
		}
		lastPct, lastCount = max(lastPct, p.Percent), max(lastCount, p.Count)
	}
	return nil
}

// cumulative is how many of n eligible devices have been assigned once the
// phase is done. Percentages round half up in exact integer arithmetic
// (basis points), and a non-zero percentage of a non-empty fleet is at
// least one device, so a 1% canary of 40 devices is one device, not none.
func (p *Phase) cumulative(n int) int {
	if p.Count > 0 {
		return min(p.Count, n)
	}
	bp := int64(math.Round(p.Percent * 100))
	c := int((bp*int64(n) + 5000) / 10000)
	if c == 0 && bp > 0 && n > 0 {
		c = 1
	}
	return min(c, n)
}

// PhaseSizes splits n eligible devices over phases: element i is how many
// devices phase i adds. Sizes never go negative (a smaller cumulative target
// than an earlier phase's adds nothing) and sum to at most n.
func PhaseSizes(phases []Phase, n int) []int {
	sizes := make([]int, len(phases))
	done := 0
	for i := range phases {
		c := max(phases[i].cumulative(n), done)
		sizes[i] = c - done
		done = c
	}
	return sizes
}
