package rollout

import (
	"context"
	"fmt"

	"github.com/koshin-ota/koshin"
)

// Start moves a draft to running. The store snapshots the eligible devices
// and plans every phase with the rollout's recorded seed; the engine's
// next tick assigns the first devices. Returns ENOTFOUND, or ECONFLICT if
// the rollout is not a draft or its release was revoked.
func (s *Service) Start(ctx context.Context, principal string, id int64) (*koshin.Rollout, error) {
	r, err := s.Store.StartRollout(ctx, id, s.now())
	detail := ""
	if r != nil {
		detail = fmt.Sprintf("%d eligible devices, %d phases", r.Eligible, len(r.Phases))
	}
	s.record(ctx, principal, "rollout.start", rolloutTarget(id), err, detail)
	return r, err
}

// Pause stops new assignments and offers; devices already working on the
// update continue. Returns ENOTFOUND, or ECONFLICT unless running.
func (s *Service) Pause(ctx context.Context, principal string, id int64) (*koshin.Rollout, error) {
	r, err := s.Store.PauseRollout(ctx, id, s.now())
	s.record(ctx, principal, "rollout.pause", rolloutTarget(id), err, "")
	return r, err
}

// Update changes a rollout's operational parameters (threshold, silence
// timeout, window, rate). Returns ENOTFOUND, EINVALID, or ECONFLICT once
// the rollout has ended.
func (s *Service) Update(ctx context.Context, principal string, id int64, upd koshin.RolloutUpdate) (*koshin.Rollout, error) {
	r, err := s.Store.UpdateRollout(ctx, id, upd, s.now())
	s.record(ctx, principal, "rollout.update", rolloutTarget(id), err, describeUpdate(upd))
	return r, err
}

// Resume continues a paused or halted rollout: after a halt it is the
// operator's decision that the failures are understood. upd, if not nil,
// is applied first, typically a higher threshold. A halted rollout whose
// current phase still reaches its threshold is refused (ECONFLICT): it
// would halt again on the next tick. Returns ENOTFOUND, EINVALID, or
// ECONFLICT if the rollout is neither paused nor halted, or its release
// was revoked.
func (s *Service) Resume(ctx context.Context, principal string, id int64, upd *koshin.RolloutUpdate) (*koshin.Rollout, error) {
	r, err := s.resume(ctx, id, upd)
	detail := ""
	if upd != nil {
		detail = describeUpdate(*upd)
	}
	s.record(ctx, principal, "rollout.resume", rolloutTarget(id), err, detail)
	return r, err
}

func (s *Service) resume(ctx context.Context, id int64, upd *koshin.RolloutUpdate) (*koshin.Rollout, error) {
	now := s.now()
	r, err := s.Store.FindRolloutByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.State != koshin.RolloutPaused && r.State != koshin.RolloutHalted {
		return nil, koshin.Errorf(koshin.ECONFLICT, "Rollout %d is %s; only a paused or halted rollout can resume.", id, r.State)
	}
	if upd != nil {
		// A separate call: if we die before resuming, the rollout keeps
		// its new parameters and stays stopped, and a retry resumes it.
		if r, err = s.Store.UpdateRollout(ctx, id, *upd, now); err != nil {
			return nil, err
		}
	}
	if r.State == koshin.RolloutHalted {
		stats, err := s.Store.FindPhaseStats(ctx, id, r.Phase, now)
		if err != nil {
			return nil, err
		}
		if over, why := r.PhaseThreshold(r.Phase).Exceeded(*stats); over {
			return nil, koshin.Errorf(koshin.ECONFLICT,
				"Phase %d still reaches its failure threshold (%s); raise the threshold to resume, or abort.", r.Phase+1, why)
		}
	}
	return s.Store.ResumeRollout(ctx, id, now)
}

// Abort ends a rollout for good and cancels every assignment that has not
// started; devices already installing finish. An empty reason is recorded
// as the principal's abort. Returns ENOTFOUND, EINVALID, or ECONFLICT if
// the rollout has already ended.
func (s *Service) Abort(ctx context.Context, principal string, id int64, reason string) (*koshin.Rollout, error) {
	if reason == "" {
		reason = "aborted by " + principal
	}
	r, n, err := s.Store.AbortRollout(ctx, id, reason, s.now())
	s.record(ctx, principal, "rollout.abort", rolloutTarget(id), err, fmt.Sprintf("%s; %d assignments cancelled", reason, n))
	return r, err
}

// Advance moves a running rollout from phase from (0-based, guarding
// against a double click or a race with the engine) to the next phase, or
// completes it after the last. The operator may skip the soak time, but
// not an unfinished phase: failures of devices still in flight would count
// against no threshold. Returns ENOTFOUND, or ECONFLICT if the rollout is
// not running in phase from, the phase is not finished, or its threshold
// is reached.
func (s *Service) Advance(ctx context.Context, principal string, id int64, from int) (*koshin.Rollout, error) {
	r, err := s.advance(ctx, id, from)
	detail := fmt.Sprintf("from phase %d", from+1)
	if err == nil && r.State == koshin.RolloutCompleted {
		detail += "; completed"
	}
	s.record(ctx, principal, "rollout.advance", rolloutTarget(id), err, detail)
	return r, err
}

func (s *Service) advance(ctx context.Context, id int64, from int) (*koshin.Rollout, error) {
	now := s.now()
	r, err := s.Store.FindRolloutByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.State != koshin.RolloutRunning || r.Phase != from {
		return nil, koshin.Errorf(koshin.ECONFLICT, "Rollout %d is %s in phase %d, not running in phase %d.", id, r.State, r.Phase+1, from+1)
	}
	stats, err := s.Store.FindPhaseStats(ctx, id, from, now)
	if err != nil {
		return nil, err
	}
	if over, why := r.PhaseThreshold(from).Exceeded(*stats); over {
		return nil, koshin.Errorf(koshin.ECONFLICT, "Phase %d reached its failure threshold (%s).", from+1, why)
	}
	if !stats.Done() {
		return nil, koshin.Errorf(koshin.ECONFLICT, "Phase %d is not finished: %d unassigned, %d waiting, %d in progress.",
			from+1, stats.Unassigned, stats.Waiting, stats.InProgress)
	}
	return s.Store.AdvanceRollout(ctx, id, from, now)
}

// describeUpdate renders the set fields of upd for the audit log.
func describeUpdate(u koshin.RolloutUpdate) string {
	var d string
	add := func(format string, args ...any) {
		if d != "" {
			d += "; "
		}
		d += fmt.Sprintf(format, args...)
	}
	if u.Threshold != nil {
		add("threshold %d failures / %g%%", u.Threshold.MaxFailures, u.Threshold.MaxFailurePercent)
	}
	if u.SilenceTimeout != nil {
		add("silence timeout %s", *u.SilenceTimeout)
	}
	if u.ClearWindow {
		add("window cleared")
	} else if u.Window != nil {
		add("window %q for %s in %s", u.Window.Cron, u.Window.Duration, u.Window.TimeZone)
	}
	if u.RatePerMinute != nil {
		add("rate %d/min", *u.RatePerMinute)
	}
	return d
}
