package koshin

import (
	"context"
	"time"
)

// AssignmentState is where one device is in one rollout.
type AssignmentState string

const (
	AssignmentPending          AssignmentState = "pending"           // assigned; offered at the next check-in
	AssignmentAwaitingApproval AssignmentState = "awaiting-approval" // approval mode: waits for an administrator
	AssignmentOffered          AssignmentState = "offered"           // director metadata sent to the device
	AssignmentDownloading      AssignmentState = "downloading"
	AssignmentInstalling       AssignmentState = "installing"
	AssignmentRebooting        AssignmentState = "rebooting"
	AssignmentPostponed        AssignmentState = "postponed"  // the device's user postponed (consent mode)
	AssignmentCommitted        AssignmentState = "committed"  // booted the new image and healthy: success
	AssignmentDownloaded       AssignmentState = "downloaded" // download-only mode: success
	AssignmentFailed           AssignmentState = "failed"
	AssignmentRolledBack       AssignmentState = "rolled-back"
	AssignmentRejected         AssignmentState = "rejected" // the device refused the update as invalid
	AssignmentDeclined         AssignmentState = "declined" // the device's user declined
	AssignmentSilentFailed     AssignmentState = "silent-failed"
	AssignmentCancelled        AssignmentState = "cancelled"
)

type stateInfo struct {
	active   bool // counts against the one-active-assignment-per-device rule
	started  bool // the device has begun: not cancelled by a halt
	deadline bool // silence deadline applies: waiting on the device
	outcome  string
}

// Outcome classes of finished assignments, as PhaseStats counts them.
const (
	outcomeSucceeded = "succeeded"
	outcomeFailed    = "failed"
	outcomeDeclined  = "declined"
	outcomeCancelled = "cancelled"
)

var assignmentStates = map[AssignmentState]stateInfo{
	AssignmentPending:          {active: true, deadline: true},
	AssignmentAwaitingApproval: {active: true},
	AssignmentOffered:          {active: true, deadline: true},
	AssignmentPostponed:        {active: true},
	AssignmentDownloading:      {active: true, started: true, deadline: true},
	AssignmentInstalling:       {active: true, started: true, deadline: true},
	AssignmentRebooting:        {active: true, started: true, deadline: true},
	AssignmentCommitted:        {started: true, outcome: outcomeSucceeded},
	AssignmentDownloaded:       {started: true, outcome: outcomeSucceeded},
	AssignmentFailed:           {started: true, outcome: outcomeFailed},
	AssignmentRolledBack:       {started: true, outcome: outcomeFailed},
	AssignmentRejected:         {started: true, outcome: outcomeFailed},
	AssignmentSilentFailed:     {started: true, outcome: outcomeFailed},
	AssignmentDeclined:         {started: true, outcome: outcomeDeclined},
	AssignmentCancelled:        {outcome: outcomeCancelled},
}

// AssignmentStates lists every state, for stores that mirror the set in a
// constraint.
func AssignmentStates() []AssignmentState {
	out := make([]AssignmentState, 0, len(assignmentStates))
	for s := range assignmentStates {
		out = append(out, s)
	}
	return out
}

// Validate reports whether s is a known state.
func (s AssignmentState) Validate() error {
	if _, ok := assignmentStates[s]; !ok {
		return Errorf(EINVALID, "Unknown assignment state %q.", s)
	}
	return nil
}

// Active reports whether s has not ended. A device has at most one active
// assignment.
func (s AssignmentState) Active() bool { return assignmentStates[s].active }

// Started reports whether the device has begun working on the update; a
// halted or aborted rollout cancels every active assignment that has not.
func (s AssignmentState) Started() bool { return assignmentStates[s].started }

// HasDeadline reports whether the silence deadline runs in s: the server
// waits on the device, not on a person.
func (s AssignmentState) HasDeadline() bool { return assignmentStates[s].deadline }

// Succeeded reports whether s counts as success (committed, or downloaded in
// download-only mode). Installed-but-not-booted never does.
func (s AssignmentState) Succeeded() bool { return assignmentStates[s].outcome == outcomeSucceeded }

// Failed reports whether s counts as a failure for thresholds.
func (s AssignmentState) Failed() bool { return assignmentStates[s].outcome == outcomeFailed }

// Assignment is one device's part in one rollout.
type Assignment struct {
	ID          int64           `json:"id"`
	RolloutID   int64           `json:"rollout_id"`
	DeviceID    string          `json:"device_id"`
	Phase       int             `json:"phase"`
	ReleaseName string          `json:"release"`
	Mode        RolloutMode     `json:"mode"`
	State       AssignmentState `json:"state"`
	// Reason is the device's or server's last reason for the state.
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Deadline is when the assignment counts as silent; zero when the
	// state does not wait on the device.
	Deadline   time.Time `json:"deadline,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Overdue reports whether the device has been silent past the deadline.
func (a *Assignment) Overdue(now time.Time) bool {
	return a.State.Active() && !a.Deadline.IsZero() && !now.Before(a.Deadline)
}

// CanTransition reports whether the server or an operator may move an
// assignment from s to to. Device-reported progress goes through Next.
func (s AssignmentState) CanTransition(to AssignmentState) bool {
	switch to {
	case AssignmentPending:
		return s == AssignmentAwaitingApproval
	case AssignmentOffered:
		return s == AssignmentPending || s == AssignmentPostponed
	case AssignmentCancelled:
		return s.Active() && !s.Started()
	case AssignmentSilentFailed:
		return s.HasDeadline()
	}
	return false
}

// Next is the state a device event moves an assignment in mode to, and
// whether it changes anything. Events never revive an ended assignment,
// never skip an administrator's approval, and in forced mode the user
// cannot postpone or decline (CCDS UPD11).
func (s AssignmentState) Next(e EventType, mode RolloutMode) (AssignmentState, bool) {
	if !s.Active() || s == AssignmentAwaitingApproval {
		return s, false
	}
	next, ok := eventTransitions[e]
	if !ok {
		return s, false
	}
	if e == EventDownloaded {
		next = AssignmentDownloading
		if mode == ModeDownloadOnly {
			next = AssignmentDownloaded
		}
	}
	if (e == EventPostponed || e == EventDeclined) &&
		(mode == ModeForced || s == AssignmentInstalling || s == AssignmentRebooting) {
		return s, false
	}
	return next, next != s
}

var eventTransitions = map[EventType]AssignmentState{
	EventDownloading: AssignmentDownloading,
	EventDownloaded:  AssignmentDownloading, // refined by mode in Next
	EventInstalling:  AssignmentInstalling,
	EventRebooting:   AssignmentRebooting,
	EventCommitted:   AssignmentCommitted,
	EventFailed:      AssignmentFailed,
	EventRolledBack:  AssignmentRolledBack,
	EventRejected:    AssignmentRejected,
	EventPostponed:   AssignmentPostponed,
	EventDeclined:    AssignmentDeclined,
}

// AssignmentFilter lists assignments by ID.
type AssignmentFilter struct {
	RolloutID int64           `json:"rollout_id,omitempty"`
	DeviceID  string          `json:"device_id,omitempty"`
	Phase     *int            `json:"phase,omitempty"`
	State     AssignmentState `json:"state,omitempty"`
	Page      SeqPage         `json:"page"`
}

// Validate checks the filter.
func (f *AssignmentFilter) Validate() error {
	if f.DeviceID != "" {
		if err := validateHex("Device ID", f.DeviceID, 64); err != nil {
			return err
		}
	}
	if f.Phase != nil && (*f.Phase < 0 || *f.Phase >= MaxPhases) {
		return Errorf(EINVALID, "Phase must be between 0 and %d.", MaxPhases-1)
	}
	if f.State != "" {
		if err := f.State.Validate(); err != nil {
			return err
		}
	}
	return f.Page.Validate()
}

// AssignmentStore reads and moves assignments. Device events move them
// through EventStore.RecordEvent; this store serves the check-in path, the
// operator's approvals and the silence sweep.
type AssignmentStore interface {
	// FindAssignmentByID returns ENOTFOUND if absent.
	FindAssignmentByID(ctx context.Context, id int64) (*Assignment, error)

	// FindActiveAssignment returns the device's one active assignment, the
	// check-in hot path; ENOTFOUND if it has none.
	FindActiveAssignment(ctx context.Context, deviceID string) (*Assignment, error)

	// FindAssignments lists assignments matching f.
	FindAssignments(ctx context.Context, f AssignmentFilter) ([]*Assignment, error)

	// TransitionAssignment moves an assignment as CanTransition allows
	// (offer at check-in, approval, cancellation) and returns it. Returns
	// ENOTFOUND, EINVALID, or ECONFLICT if the move is not allowed from
	// the current state (e.g. another replica moved it first).
	TransitionAssignment(ctx context.Context, id int64, to AssignmentState, reason string, now time.Time) (*Assignment, error)

	// ApproveAssignments moves a rollout's awaiting-approval assignments to
	// pending: those of the listed devices, or all when deviceIDs is empty.
	// Returns the number approved; ENOTFOUND for an unknown rollout.
	ApproveAssignments(ctx context.Context, rolloutID int64, deviceIDs []string, now time.Time) (int, error)

	// ExpireSilentAssignments marks every assignment past its deadline
	// silent-failed and returns how many it marked.
	ExpireSilentAssignments(ctx context.Context, now time.Time) (int, error)
}
