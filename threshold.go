package koshin

import (
	"fmt"
	"math"
	"time"
)

// Threshold halts a rollout when a phase fails too much. Either bound may be
// zero (off); a rollout must set at least one.
type Threshold struct {
	// MaxFailures halts when this many devices of the phase have failed.
	MaxFailures int `json:"max_failures,omitempty"`
	// MaxFailurePercent halts when failed/started reaches this percentage.
	MaxFailurePercent float64 `json:"max_failure_percent,omitempty"`
}

// Validate checks the bounds; required says at least one must be set.
func (t *Threshold) Validate(required bool) error {
	if t.MaxFailures < 0 || t.MaxFailures > MaxPhaseCount {
		return Errorf(EINVALID, "Maximum failures must be between 0 and %d.", MaxPhaseCount)
	}
	if t.MaxFailurePercent < 0 || t.MaxFailurePercent > 100 || math.IsNaN(t.MaxFailurePercent) {
		return Errorf(EINVALID, "Maximum failure percentage must be between 0 and 100.")
	}
	if required && t.MaxFailures == 0 && t.MaxFailurePercent == 0 {
		return Errorf(EINVALID, "A failure threshold (count or percentage) is required.")
	}
	return nil
}

// Exceeded reports whether the phase's failures reach the threshold, and why.
// Silent devices are already counted in s.Failed (see PhaseStats). The
// percentage is of the devices started, so early failures in a phase halt
// it before most devices are touched.
func (t Threshold) Exceeded(s PhaseStats) (bool, string) {
	if t.MaxFailures > 0 && s.Failed >= t.MaxFailures {
		return true, fmt.Sprintf("%d devices failed (threshold %d)", s.Failed, t.MaxFailures)
	}
	started := s.Started()
	if t.MaxFailurePercent > 0 && started > 0 && s.Failed > 0 &&
		float64(s.Failed)*100 >= t.MaxFailurePercent*float64(started) {
		return true, fmt.Sprintf("%d of %d started devices failed (threshold %g%%)", s.Failed, started, t.MaxFailurePercent)
	}
	return false, ""
}

// PhaseStats counts one phase of a rollout.
type PhaseStats struct {
	Phase int `json:"phase"`
	// Members is the number of devices the plan put in the phase;
	// Unassigned of them are still waiting for AssignNext, and Skipped were
	// dropped from the plan (decommissioned before their turn).
	Members    int `json:"members"`
	Unassigned int `json:"unassigned"`
	Skipped    int `json:"skipped"`
	// Waiting: assigned but not offered yet (pending, awaiting approval).
	Waiting int `json:"waiting"`
	// InProgress: offered, downloading, installing, rebooting, postponed.
	InProgress int `json:"in_progress"`
	// Succeeded: committed, or downloaded in download-only mode.
	Succeeded int `json:"succeeded"`
	// Failed: failed, rolled back, rejected, silent (past the deadline).
	Failed    int `json:"failed"`
	Declined  int `json:"declined"`
	Cancelled int `json:"cancelled"`
	// AssignedRecently is how many assignments were created in the minute
	// before now, for the rate limit.
	AssignedRecently int `json:"assigned_recently"`
	// LastFinishedAt is when the phase's last assignment reached an end.
	LastFinishedAt time.Time `json:"last_finished_at,omitzero"`
}

// Started is the number of devices that have been offered the update: the
// denominator of the failure percentage.
func (s PhaseStats) Started() int { return s.InProgress + s.Succeeded + s.Failed + s.Declined }

// Done reports whether every member has been assigned and every assignment
// has reached an end.
func (s PhaseStats) Done() bool { return s.Unassigned == 0 && s.Waiting == 0 && s.InProgress == 0 }
