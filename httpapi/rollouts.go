package httpapi

import (
	"net/http"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/rollout"
)

// The rollout service audits every operation it carries out with the
// principal passed here, so these handlers do not audit again.

func (s *Server) listRollouts(w http.ResponseWriter, r *http.Request, _ *principal) error {
	q := newQuery(r)
	f := koshin.RolloutFilter{State: koshin.RolloutState(q.str("state")), ReleaseName: q.str("release"), Page: q.seqPage()}
	if q.err != nil {
		return q.err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	rs, err := s.Store.FindRollouts(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, seqList(rs, f.Page.Limit, func(r *koshin.Rollout) int64 { return r.ID }))
	return nil
}

// rolloutSpec is the definition an operator submits; state fields are
// not accepted, so a client cannot smuggle them in.
type rolloutSpec struct {
	Name           string                    `json:"name,omitempty"`
	ReleaseName    string                    `json:"release"`
	Selector       koshin.Selector           `json:"selector"`
	Phases         []koshin.Phase            `json:"phases"`
	Threshold      koshin.Threshold          `json:"threshold"`
	SilenceTimeout time.Duration             `json:"silence_timeout"`
	Window         *koshin.MaintenanceWindow `json:"window,omitempty"`
	RatePerMinute  int                       `json:"rate_per_minute,omitempty"`
	Mode           koshin.RolloutMode        `json:"mode"`
	StratifyTags   []string                  `json:"stratify_tags,omitempty"`
	Seed           int64                     `json:"seed,omitempty"`
}

func (sp *rolloutSpec) rollout() koshin.Rollout {
	return koshin.Rollout{Name: sp.Name, ReleaseName: sp.ReleaseName, Selector: sp.Selector, Phases: sp.Phases,
		Threshold: sp.Threshold, SilenceTimeout: sp.SilenceTimeout, Window: sp.Window, RatePerMinute: sp.RatePerMinute,
		Mode: sp.Mode, StratifyTags: sp.StratifyTags, Seed: sp.Seed}
}

type rolloutCreated struct {
	Rollout *koshin.Rollout `json:"rollout"`
	Plan    *rollout.Plan   `json:"plan"`
}

func (s *Server) createRollout(w http.ResponseWriter, r *http.Request, p *principal) error {
	var spec rolloutSpec
	if err := decodeJSON(w, r, &spec, maxJSONBody); err != nil {
		return err
	}
	ro, plan, err := s.Rollouts.Create(r.Context(), p.String(), spec.rollout())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, rolloutCreated{Rollout: ro, Plan: plan})
	return nil
}

// rolloutStatus is a rollout with the counts of every phase reached so
// far and what the engine would do with it now.
type rolloutStatus struct {
	Rollout  *koshin.Rollout     `json:"rollout"`
	Phases   []koshin.PhaseStats `json:"phases"`
	Decision *koshin.Decision    `json:"decision,omitempty"`
}

func (s *Server) getRollout(w http.ResponseWriter, r *http.Request, _ *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ro, err := s.Store.FindRolloutByID(r.Context(), id)
	if err != nil {
		return err
	}
	st := rolloutStatus{Rollout: ro, Phases: []koshin.PhaseStats{}}
	if ro.State != koshin.RolloutDraft {
		now := s.now()
		for i := 0; i <= ro.Phase && i < len(ro.Phases); i++ {
			ps, err := s.Store.FindPhaseStats(r.Context(), id, i, now)
			if err != nil {
				return err
			}
			st.Phases = append(st.Phases, *ps)
		}
		d := ro.Decide(st.Phases[len(st.Phases)-1], now)
		st.Decision = &d
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) rolloutAssignments(w http.ResponseWriter, r *http.Request, _ *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	q := newQuery(r)
	f := koshin.AssignmentFilter{RolloutID: id, State: koshin.AssignmentState(q.str("state")), Page: q.seqPage()}
	if q.str("phase") != "" {
		ph := q.int("phase")
		f.Phase = &ph
	}
	if q.err != nil {
		return q.err
	}
	return s.writeAssignments(w, r, f)
}

func (s *Server) updateRollout(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var upd koshin.RolloutUpdate
	if err := decodeJSON(w, r, &upd, maxJSONBody); err != nil {
		return err
	}
	return s.writeRollout(w)(s.Rollouts.Update(r.Context(), p.String(), id, upd))
}

func (s *Server) startRollout(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	return s.writeRollout(w)(s.Rollouts.Start(r.Context(), p.String(), id))
}

func (s *Server) pauseRollout(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	return s.writeRollout(w)(s.Rollouts.Pause(r.Context(), p.String(), id))
}

// resumeRollout continues a paused or halted rollout; the optional body
// changes its parameters first (typically a higher threshold after a
// halt whose failures are understood).
func (s *Server) resumeRollout(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var upd *koshin.RolloutUpdate
	var body koshin.RolloutUpdate
	if err := decodeOptionalJSON(w, r, &body); err != nil {
		return err
	}
	if body != (koshin.RolloutUpdate{}) {
		upd = &body
	}
	return s.writeRollout(w)(s.Rollouts.Resume(r.Context(), p.String(), id, upd))
}

type abortRequest struct {
	Reason string `json:"reason,omitempty"`
}

func (s *Server) abortRollout(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req abortRequest
	if err := decodeOptionalJSON(w, r, &req); err != nil {
		return err
	}
	if len(req.Reason) > koshin.MaxHaltReasonLen {
		return koshin.Errorf(koshin.EINVALID, "Reason must be at most %d bytes.", koshin.MaxHaltReasonLen)
	}
	return s.writeRollout(w)(s.Rollouts.Abort(r.Context(), p.String(), id, req.Reason))
}

// advanceRequest names the phase (0-based, as in the rollout's "phase")
// the operator is looking at, so a double click or a race with the engine
// cannot skip a phase.
type advanceRequest struct {
	From *int `json:"from"`
}

func (s *Server) advanceRollout(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req advanceRequest
	if err := decodeJSON(w, r, &req, maxSmallBody); err != nil {
		return err
	}
	if req.From == nil || *req.From < 0 || *req.From >= koshin.MaxPhases {
		return koshin.Errorf(koshin.EINVALID, "Field \"from\" must name the current phase (0-%d).", koshin.MaxPhases-1)
	}
	return s.writeRollout(w)(s.Rollouts.Advance(r.Context(), p.String(), id, *req.From))
}

// approveRollout approves devices of an approval-mode rollout (the CCDS
// industrial flow): all waiting devices, named devices, or a group.
func (s *Server) approveRollout(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req rollout.Approval
	if err := decodeJSON(w, r, &req, maxJSONBody); err != nil {
		return err
	}
	n, err := s.Rollouts.Approve(r.Context(), p.String(), id, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int{"approved": n})
	return nil
}

// writeRollout answers a rollout operation's result.
func (s *Server) writeRollout(w http.ResponseWriter) func(*koshin.Rollout, error) error {
	return func(ro *koshin.Rollout, err error) error {
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, ro)
		return nil
	}
}
