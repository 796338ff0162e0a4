package koshin

import (
	"context"
	"time"
)

// RolloutState is where a rollout is in its life.
//
//	draft ─start→ running ─→ completed
//	                │  ↑ resume
//	                ├→ paused ─┐
//	                └→ halted ─┴→ aborted   (draft, running, paused → aborted too)
type RolloutState string

const (
	RolloutDraft     RolloutState = "draft"
	RolloutRunning   RolloutState = "running"
	RolloutPaused    RolloutState = "paused" // by an operator; assignments in flight continue
	RolloutHalted    RolloutState = "halted" // by a failure threshold or a revocation
	RolloutCompleted RolloutState = "completed"
	RolloutAborted   RolloutState = "aborted"
)

var rolloutTransitions = map[RolloutState][]RolloutState{
	RolloutDraft:   {RolloutRunning, RolloutAborted},
	RolloutRunning: {RolloutPaused, RolloutHalted, RolloutCompleted, RolloutAborted},
	RolloutPaused:  {RolloutRunning, RolloutHalted, RolloutAborted},
	RolloutHalted:  {RolloutRunning, RolloutAborted},
}

// Validate reports whether s is a known state.
func (s RolloutState) Validate() error {
	if _, ok := rolloutTransitions[s]; ok || s.Terminal() {
		return nil
	}
	return Errorf(EINVALID, "Unknown rollout state %q.", s)
}

// Terminal reports whether nothing can happen to the rollout any more.
func (s RolloutState) Terminal() bool { return s == RolloutCompleted || s == RolloutAborted }

// CanBecome reports whether the state machine allows s → to.
func (s RolloutState) CanBecome(to RolloutState) bool {
	for _, t := range rolloutTransitions[s] {
		if t == to {
			return true
		}
	}
	return false
}

// RolloutMode says how devices proceed once assigned.
type RolloutMode string

const (
	// ModeAutomatic: devices download and install on their own schedule.
	ModeAutomatic RolloutMode = "automatic"
	// ModeApproval: an administrator approves each device or group before
	// it is offered the update (the CCDS industrial flow).
	ModeApproval RolloutMode = "approval"
	// ModeConsent: the device's user approves, postpones or declines.
	ModeConsent RolloutMode = "consent"
	// ModeForced: the administrator overrides the user (CCDS UPD11).
	ModeForced RolloutMode = "forced"
	// ModeDownloadOnly: fetch and verify now, install with a later rollout;
	// success is "downloaded".
	ModeDownloadOnly RolloutMode = "download-only"
)

// Validate reports whether m is a known mode.
func (m RolloutMode) Validate() error {
	switch m {
	case ModeAutomatic, ModeApproval, ModeConsent, ModeForced, ModeDownloadOnly:
		return nil
	}
	return Errorf(EINVALID, "Rollout mode must be automatic, approval, consent, forced or download-only.")
}

// Limits of rollout fields.
const (
	MaxPhases         = 20
	MaxStratifyTags   = 8
	MinSilenceTimeout = time.Minute
	MaxSilenceTimeout = 90 * 24 * time.Hour
	MaxRatePerMinute  = 1_000_000
	MaxHaltReasonLen  = MaxTextLen
	maxRolloutNameLen = MaxShortLen
)

// Rollout targets a release at a selection of devices, phase by phase.
type Rollout struct {
	ID          int64    `json:"id"`
	Name        string   `json:"name,omitempty"`
	ReleaseName string   `json:"release"`
	Selector    Selector `json:"selector"`
	// Phases are cumulative: phase i ends when its share of the eligible
	// devices (counting earlier phases) has been assigned and finished.
	Phases    []Phase   `json:"phases"`
	Threshold Threshold `json:"threshold"`
	// SilenceTimeout is how long an assigned device may stay silent before
	// its assignment counts as failed (silent-failed). Choose it above the
	// devices' poll interval: a pending assignment waits for the next
	// check-in under the same deadline.
	SilenceTimeout time.Duration `json:"silence_timeout"`
	// Window restricts when new devices are started (CCDS UPE08); nil means
	// any time.
	Window *MaintenanceWindow `json:"window,omitempty"`
	// RatePerMinute caps devices started per minute (0 = no cap) so that
	// downloads arrive in batches (EN 303 645 5.9-3, CCDS UPD02).
	RatePerMinute int         `json:"rate_per_minute,omitempty"`
	Mode          RolloutMode `json:"mode"`
	// StratifyTags name the tags that, with the hardware ID, define the
	// strata phases are sampled across (e.g. region=eu, region=us).
	StratifyTags []string `json:"stratify_tags,omitempty"`
	// Seed makes phase sampling reproducible; stores pick one when zero.
	Seed int64 `json:"seed"`

	State      RolloutState `json:"state"`
	HaltReason string       `json:"halt_reason,omitempty"`
	// Phase is the index of the current phase once started.
	Phase          int       `json:"phase"`
	PhaseStartedAt time.Time `json:"phase_started_at,omitzero"`
	// Eligible is the number of devices the rollout was planned over.
	Eligible   int       `json:"eligible"`
	CreatedBy  string    `json:"created_by"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Validate checks the operator-supplied definition.
func (r *Rollout) Validate() error {
	if err := validateText("Rollout name", r.Name, maxRolloutNameLen); err != nil {
		return err
	}
	if err := ValidateReleaseName(r.ReleaseName); err != nil {
		return err
	}
	if err := r.Selector.Validate(); err != nil {
		return err
	}
	if err := validatePhases(r.Phases); err != nil {
		return err
	}
	if err := r.Mode.Validate(); err != nil {
		return err
	}
	if err := ValidateID("Creator", r.CreatedBy); err != nil {
		return err
	}
	if err := validateTags(r.StratifyTags); err != nil || len(r.StratifyTags) > MaxStratifyTags {
		return Errorf(EINVALID, "At most %d valid stratify tags are allowed.", MaxStratifyTags)
	}
	return r.validateOperational()
}

// validateOperational checks the fields an operator may change while the
// rollout runs.
func (r *Rollout) validateOperational() error {
	if err := r.Threshold.Validate(true); err != nil {
		return err
	}
	if r.SilenceTimeout < MinSilenceTimeout || r.SilenceTimeout > MaxSilenceTimeout {
		return Errorf(EINVALID, "Silence timeout must be between %s and %s.", MinSilenceTimeout, MaxSilenceTimeout)
	}
	if r.RatePerMinute < 0 || r.RatePerMinute > MaxRatePerMinute {
		return Errorf(EINVALID, "Rate must be between 0 and %d devices per minute.", MaxRatePerMinute)
	}
	if r.Window != nil {
		return r.Window.Validate()
	}
	return nil
}

// CurrentPhase returns the phase the rollout is in.
func (r *Rollout) CurrentPhase() Phase { return r.Phases[r.Phase] }

// LastPhase reports whether the current phase is the final one.
func (r *Rollout) LastPhase() bool { return r.Phase == len(r.Phases)-1 }

// PhaseThreshold is the threshold that applies to phase i.
func (r *Rollout) PhaseThreshold(i int) Threshold {
	if t := r.Phases[i].Threshold; t != nil {
		return *t
	}
	return r.Threshold
}

// InitialAssignmentState is the state new assignments start in.
func (r *Rollout) InitialAssignmentState() AssignmentState {
	if r.Mode == ModeApproval {
		return AssignmentAwaitingApproval
	}
	return AssignmentPending
}

// Deadline is when an assignment entering state at now counts as silent;
// zero for states that wait on a person rather than on the device.
func (r *Rollout) Deadline(state AssignmentState, now time.Time) time.Time {
	if !state.HasDeadline() {
		return time.Time{}
	}
	return now.Add(r.SilenceTimeout)
}

// RolloutUpdate changes a rollout's operational parameters; nil fields stay.
// The release, selector, phases and mode are fixed once created: a changed
// plan is a new rollout, so that what was approved is what runs.
type RolloutUpdate struct {
	Threshold      *Threshold     `json:"threshold,omitempty"`
	SilenceTimeout *time.Duration `json:"silence_timeout,omitempty"`
	// Window replaces the window; ClearWindow removes it.
	Window        *MaintenanceWindow `json:"window,omitempty"`
	ClearWindow   bool               `json:"clear_window,omitempty"`
	RatePerMinute *int               `json:"rate_per_minute,omitempty"`
}

// Apply copies the set fields onto r and validates the result.
func (u *RolloutUpdate) Apply(r *Rollout) error {
	if u.Threshold != nil {
		r.Threshold = *u.Threshold
	}
	if u.SilenceTimeout != nil {
		r.SilenceTimeout = *u.SilenceTimeout
	}
	if u.ClearWindow {
		r.Window = nil
	} else if u.Window != nil {
		w := *u.Window
		r.Window = &w
	}
	if u.RatePerMinute != nil {
		r.RatePerMinute = *u.RatePerMinute
	}
	return r.validateOperational()
}

// RolloutFilter lists rollouts by ID.
type RolloutFilter struct {
	State       RolloutState `json:"state,omitempty"`
	ReleaseName string       `json:"release,omitempty"`
	Page        SeqPage      `json:"page"`
}

// Validate checks the filter.
func (f *RolloutFilter) Validate() error {
	if f.State != "" {
		if err := f.State.Validate(); err != nil {
			return err
		}
	}
	if f.ReleaseName != "" {
		if err := ValidateReleaseName(f.ReleaseName); err != nil {
			return err
		}
	}
	return f.Page.Validate()
}

// RolloutStore keeps rollouts and carries out their state changes, each in
// one transaction so that concurrent server replicas and crashes cannot
// leave a half-applied change. The rollout engine decides (see Decide,
// Threshold, StartBudget, MaintenanceWindow); the store applies.
type RolloutStore interface {
	// CreateRollout stores a draft and sets ID, Seed (if zero), State,
	// CreatedAt and UpdatedAt. Returns EINVALID; ENOTFOUND if the release
	// does not exist; ECONFLICT if it is revoked.
	CreateRollout(ctx context.Context, r *Rollout) error

	// FindRolloutByID returns ENOTFOUND if absent.
	FindRolloutByID(ctx context.Context, id int64) (*Rollout, error)

	// FindRollouts lists rollouts matching f.
	FindRollouts(ctx context.Context, f RolloutFilter) ([]*Rollout, error)

	// UpdateRollout changes operational parameters. Returns ENOTFOUND,
	// EINVALID, or ECONFLICT if the rollout is completed or aborted.
	UpdateRollout(ctx context.Context, id int64, upd RolloutUpdate, now time.Time) (*Rollout, error)

	// StartRollout moves a draft to running: it snapshots the eligible
	// devices (active, matching the selector, fitting the release's
	// hardware), plans every phase by stratified sampling (PlanPhases) and
	// enters phase 0. Returns ENOTFOUND, or ECONFLICT if the rollout is
	// not a draft or its release is revoked.
	StartRollout(ctx context.Context, id int64, now time.Time) (*Rollout, error)

	// AssignNext atomically assigns up to n not-yet-assigned devices of the
	// given phase, in plan order, skipping devices that already have an
	// active assignment (at most one per device, enforced by a database
	// constraint) and retiring decommissioned ones from the plan. Returns
	// the new assignments; ENOTFOUND; EINVALID unless 1 ≤ n ≤ MaxLimit; or
	// ECONFLICT if the rollout is not running or not in that phase.
	AssignNext(ctx context.Context, id int64, phase, n int, now time.Time) ([]*Assignment, error)

	// AdvanceRollout moves a running rollout from phase from to the next
	// one, or completes it after the last. The phase argument makes the
	// call safe to repeat or race: ECONFLICT if the rollout is not running
	// in phase from. Returns ENOTFOUND.
	AdvanceRollout(ctx context.Context, id int64, from int, now time.Time) (*Rollout, error)

	// PauseRollout stops new assignments; ECONFLICT unless running.
	PauseRollout(ctx context.Context, id int64, now time.Time) (*Rollout, error)

	// ResumeRollout continues a paused or halted rollout and clears the
	// halt reason; ECONFLICT otherwise.
	ResumeRollout(ctx context.Context, id int64, now time.Time) (*Rollout, error)

	// HaltRollout stops a running or paused rollout with a reason and
	// cancels its not-yet-started assignments (AssignmentState.Started)
	// in the same transaction. Returns the number cancelled; ENOTFOUND,
	// EINVALID (reason), or ECONFLICT.
	HaltRollout(ctx context.Context, id int64, reason string, now time.Time) (*Rollout, int, error)

	// AbortRollout ends a non-terminal rollout for good and cancels its
	// not-yet-started assignments. Returns the number cancelled;
	// ENOTFOUND, EINVALID, or ECONFLICT if already completed or aborted.
	AbortRollout(ctx context.Context, id int64, reason string, now time.Time) (*Rollout, int, error)

	// FindPhaseStats counts a phase's members and assignments as at now;
	// assignments past their deadline count as failed even before
	// ExpireSilentAssignments marks them. Returns ENOTFOUND, EINVALID.
	FindPhaseStats(ctx context.Context, id int64, phase int, now time.Time) (*PhaseStats, error)
}
