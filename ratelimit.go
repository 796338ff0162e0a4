package koshin

import "time"

// RateWindow is the sliding window of the start rate limit.
const RateWindow = time.Minute

// StartBudget is how many devices the engine may assign in the current
// phase now: none unless the rollout runs and its maintenance window is
// open (CCDS UPE08); otherwise the phase's unassigned members, capped by the
// rate limit. The limit counts assignments created in the last RateWindow,
// so a batch of RatePerMinute devices starts, then the next one a minute
// later (EN 303 645 5.9-3), and a restarted or replaced engine replica
// resumes at the same pace because the count lives in the store.
func (r *Rollout) StartBudget(s PhaseStats, now time.Time) int {
	if r.State != RolloutRunning || (r.Window != nil && !r.Window.InWindow(now)) {
		return 0
	}
	budget := s.Unassigned
	if r.RatePerMinute > 0 {
		budget = min(budget, r.RatePerMinute-s.AssignedRecently)
	}
	return max(budget, 0)
}
