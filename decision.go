package koshin

import "time"

// Action is what the rollout engine should do with a rollout now.
type Action string

const (
	ActionWait     Action = "wait"     // nothing to do yet
	ActionHalt     Action = "halt"     // the failure threshold is reached
	ActionAdvance  Action = "advance"  // start the next phase
	ActionComplete Action = "complete" // the last phase is done
	// ActionAwaitOperator: the phase is done and soaked but manual.
	ActionAwaitOperator Action = "await-operator"
)

// Decision is the engine's verdict on one rollout with a reason for the
// audit log and, when waiting for soak, when to look again.
type Decision struct {
	Action Action    `json:"action"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at,omitzero"`
}

// Decide applies the rollout rules to the current phase's stats at now:
// a reached threshold halts (checked first, so a failing phase stops while
// devices are still in flight); a phase advances only when every member has
// been assigned, every assignment has ended (success counts only at
// committed), and its soak time has passed since the last one ended.
func (r *Rollout) Decide(s PhaseStats, now time.Time) Decision {
	if r.State != RolloutRunning {
		return Decision{Action: ActionWait, Reason: "rollout is " + string(r.State)}
	}
	if over, why := r.PhaseThreshold(r.Phase).Exceeded(s); over {
		return Decision{Action: ActionHalt, Reason: why}
	}
	if !s.Done() {
		return Decision{Action: ActionWait, Reason: "phase in progress"}
	}
	soakEnd := maxTime(r.PhaseStartedAt, s.LastFinishedAt).Add(r.CurrentPhase().Soak)
	if now.Before(soakEnd) {
		return Decision{Action: ActionWait, Reason: "soaking", At: soakEnd}
	}
	switch {
	case r.LastPhase():
		return Decision{Action: ActionComplete, Reason: "last phase done"}
	case r.CurrentPhase().Manual:
		return Decision{Action: ActionAwaitOperator, Reason: "phase done; manual advance"}
	}
	return Decision{Action: ActionAdvance, Reason: "phase done and soaked"}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
