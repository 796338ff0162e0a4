package rollout

import (
	"context"
	"fmt"
	"time"

	"github.com/koshin-ota/koshin"
)

// Offer is what a device should install now: the check-in handler signs
// director metadata for ReleaseName and tells the device Mode.
type Offer struct {
	AssignmentID int64                  `json:"assignment_id"`
	RolloutID    int64                  `json:"rollout_id"`
	ReleaseName  string                 `json:"release"`
	State        koshin.AssignmentState `json:"state"`
	// Mode is how the device proceeds. An approval-mode assignment is
	// offered only once an administrator approved it, so the device sees
	// automatic.
	Mode koshin.RolloutMode `json:"mode"`
	// Window, if set, is the rollout's maintenance window, which the
	// device honours for installing too (CCDS UPD05, UPE08).
	Window *koshin.MaintenanceWindow `json:"window,omitempty"`
	// Deadline is when the device counts as silent unless it reports.
	Deadline time.Time `json:"deadline,omitzero"`
}

// Instruction returns the update device deviceID should work on at now, or
// nil when it has nothing to do. A device already downloading, installing
// or rebooting keeps its update whatever happened to the rollout since (a
// half-written slot is worse than finishing), unless the release was
// revoked. An offered device keeps its offer while the rollout runs or is
// paused. A pending (or postponed) device is offered only while the
// rollout runs, inside its maintenance window, and within its start rate
// limit; the pending → offered move is one conditional store call, so two
// concurrent check-ins offer once. Devices whose assignment a halt
// cancelled, or that await approval, get nil.
func (s *Service) Instruction(ctx context.Context, deviceID string, now time.Time) (*Offer, error) {
	a, err := s.Store.FindActiveAssignment(ctx, deviceID)
	if isNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	inFlight := a.State.Started() || a.State == koshin.AssignmentOffered
	if !inFlight && !a.State.CanTransition(koshin.AssignmentOffered) {
		return nil, nil // awaiting approval
	}
	r, err := s.Store.FindRolloutByID(ctx, a.RolloutID)
	if err != nil {
		return nil, err
	}
	if ok, err := s.releaseLive(ctx, a.ReleaseName); !ok || err != nil {
		return nil, err
	}
	switch {
	case a.State.Started():
		return newOffer(a, r), nil
	case a.State == koshin.AssignmentOffered:
		if r.State == koshin.RolloutRunning || r.State == koshin.RolloutPaused {
			return newOffer(a, r), nil
		}
		return nil, nil
	}
	return s.offer(ctx, a, r, now)
}

// releaseLive reports whether the release may still be installed.
func (s *Service) releaseLive(ctx context.Context, name string) (bool, error) {
	rel, err := s.Store.FindReleaseByName(ctx, name)
	if err != nil {
		return false, err
	}
	return !rel.Revoked, nil
}

// offer moves a pending or postponed assignment to offered if the rollout
// allows a new start now.
func (s *Service) offer(ctx context.Context, a *koshin.Assignment, r *koshin.Rollout, now time.Time) (*Offer, error) {
	if r.State != koshin.RolloutRunning || (r.Window != nil && !r.Window.InWindow(now)) {
		return nil, nil
	}
	if !s.offers.allow(r.ID, r.RatePerMinute, now) {
		return nil, nil
	}
	from := a.State
	moved, err := s.Store.TransitionAssignment(ctx, a.ID, koshin.AssignmentOffered, "offered at check-in", now)
	if isConflict(err) {
		return s.afterRace(ctx, a, r)
	} else if err != nil {
		return nil, err
	}
	s.record(ctx, "device:"+a.DeviceID, "assignment.offer", assignmentTarget(a.ID), nil,
		fmt.Sprintf("rollout %d phase %d release %s (was %s)", r.ID, a.Phase+1, a.ReleaseName, from))
	return newOffer(moved, r), nil
}

// afterRace re-reads an assignment another request moved first: if that
// request offered it, this one may return the same offer.
func (s *Service) afterRace(ctx context.Context, a *koshin.Assignment, r *koshin.Rollout) (*Offer, error) {
	cur, err := s.Store.FindAssignmentByID(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	if cur.State == koshin.AssignmentOffered || cur.State.Started() && cur.State.Active() {
		return newOffer(cur, r), nil
	}
	return nil, nil
}

func newOffer(a *koshin.Assignment, r *koshin.Rollout) *Offer {
	mode := a.Mode
	if mode == koshin.ModeApproval {
		mode = koshin.ModeAutomatic
	}
	return &Offer{
		AssignmentID: a.ID, RolloutID: a.RolloutID, ReleaseName: a.ReleaseName, State: a.State,
		Mode: mode, Window: r.Window, Deadline: a.Deadline,
	}
}
