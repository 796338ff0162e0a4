package agent

import "fmt"

// State is a transaction's position in the update state machine.
type State string

// The states of an update transaction, in order (see the package doc).
const (
	StateIdle           State = "idle"
	StateChecking       State = "checking"
	StateDownloading    State = "downloading"
	StateVerifying      State = "verifying"
	StateInstalling     State = "installing"
	StateAwaitingReboot State = "awaiting-reboot"
	StateTrialBoot      State = "trial-boot"
	StateHealthCheck    State = "health-check"
	StateCommitted      State = "committed"
	StateRolledBack     State = "rolled-back"
	StateFailed         State = "failed"
)

// transitions lists, for every state a journal can hold, the states it may
// be followed by. The engine checks each write against it, so a bug cannot
// persist a jump such as downloading → committed.
var transitions = map[State][]State{
	StateDownloading:    {StateDownloading, StateVerifying, StateFailed},
	StateVerifying:      {StateDownloading, StateInstalling, StateFailed},
	StateInstalling:     {StateAwaitingReboot, StateTrialBoot, StateHealthCheck, StateRolledBack, StateFailed},
	StateAwaitingReboot: {StateTrialBoot, StateRolledBack},
	StateTrialBoot:      {StateHealthCheck, StateRolledBack},
	StateHealthCheck:    {StateHealthCheck, StateCommitted, StateRolledBack},
	StateCommitted:      {},
	StateRolledBack:     {},
	StateFailed:         {},
}

// Terminal reports whether s ends a transaction.
func (s State) Terminal() bool {
	return s == StateCommitted || s == StateRolledBack || s == StateFailed
}

// persisted reports whether a journal may hold s.
func (s State) persisted() bool {
	_, ok := transitions[s]
	return ok
}

// canMove reports whether a transaction in state from may be written next
// in state to. A new transaction always starts in downloading.
func canMove(from, to State) error {
	for _, s := range transitions[from] {
		if s == to {
			return nil
		}
	}
	return fmt.Errorf("agent: illegal transition %s → %s", from, to)
}
