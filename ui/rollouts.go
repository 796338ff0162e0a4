package ui

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/koshin-ota/koshin"
)

const rolloutsPerPage = 50

type rolloutsData struct {
	Rollouts []*koshin.Rollout
	State    string
	Next     int64
	States   []koshin.RolloutState
}

var rolloutStates = []koshin.RolloutState{koshin.RolloutDraft, koshin.RolloutRunning, koshin.RolloutPaused,
	koshin.RolloutHalted, koshin.RolloutCompleted, koshin.RolloutAborted}

// rollouts lists rollouts, newest first.
func (u *UI) rollouts(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	d := &rolloutsData{State: q.Get("state"), States: rolloutStates}
	f := koshin.RolloutFilter{State: koshin.RolloutState(d.State), Page: koshin.SeqPage{Desc: true, Limit: rolloutsPerPage}}
	if c := q.Get("cursor"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil {
			return koshin.Errorf(koshin.EINVALID, "The page cursor must be a number.")
		}
		f.Page.Cursor = n
	}
	if err := f.Validate(); err != nil {
		return err
	}
	rs, err := u.Store.FindRollouts(r.Context(), f)
	if err != nil {
		return err
	}
	d.Rollouts = rs
	if len(rs) == rolloutsPerPage {
		d.Next = rs[len(rs)-1].ID
	}
	u.render(w, r, http.StatusOK, "rollouts", &view{Title: "Rollouts", Nav: "rollouts", S: s, Data: d})
	return nil
}

// rolloutData is a rollout with its live state.
type rolloutData struct {
	R        *koshin.Rollout
	Phases   []phaseCounts
	Chart    *chart
	Decision *koshin.Decision
	Sizes    []int
	Waiting  []*koshin.Assignment
	// WaitingMore says the approval list was cut.
	WaitingMore bool
	CSRF        string
}

const maxWaitingShown = 100

func (u *UI) rolloutData(ctx context.Context, id int64) (*rolloutData, error) {
	ro, err := u.Store.FindRolloutByID(ctx, id)
	if err != nil {
		return nil, err
	}
	d := &rolloutData{R: ro, Sizes: koshin.PhaseSizes(ro.Phases, ro.Eligible)}
	if ro.State == koshin.RolloutDraft {
		return d, nil
	}
	rolledBack, err := u.rolledBackByPhase(ctx, id)
	if err != nil {
		return nil, err
	}
	now := u.Now()
	var current koshin.PhaseStats
	for i := range ro.Phases {
		ps, err := u.Store.FindPhaseStats(ctx, id, i, now)
		if err != nil {
			return nil, err
		}
		if i == ro.Phase {
			current = *ps
		}
		pc := newPhaseCounts(*ps, rolledBack[i])
		pc.Target = d.Sizes[i]
		d.Phases = append(d.Phases, pc)
	}
	dec := ro.Decide(current, now)
	d.Decision = &dec
	d.Chart = progressChart(d.Phases)
	if ro.Mode == koshin.ModeApproval && !ro.State.Terminal() {
		as, err := u.Store.FindAssignments(ctx, koshin.AssignmentFilter{RolloutID: id, State: koshin.AssignmentAwaitingApproval,
			Page: koshin.SeqPage{Limit: maxWaitingShown + 1}})
		if err != nil {
			return nil, err
		}
		d.WaitingMore = len(as) > maxWaitingShown
		d.Waiting = as[:min(len(as), maxWaitingShown)]
	}
	return d, nil
}

// rolledBackByPhase counts rolled-back assignments per phase: the phase
// statistics count them among the failures, the chart shows them apart.
func (u *UI) rolledBackByPhase(ctx context.Context, id int64) (map[int]int, error) {
	out := map[int]int{}
	f := koshin.AssignmentFilter{RolloutID: id, State: koshin.AssignmentRolledBack, Page: koshin.SeqPage{Limit: koshin.MaxLimit}}
	for seen := 0; seen < maxFailureScan; {
		page, err := u.Store.FindAssignments(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, a := range page {
			out[a.Phase]++
		}
		seen += len(page)
		if len(page) < f.Page.Limit {
			break
		}
		f.Page.Cursor = page[len(page)-1].ID
	}
	return out, nil
}

func rolloutID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, koshin.Errorf(koshin.ENOTFOUND, "There is no such rollout.")
	}
	return id, nil
}

// rollout is the live page of one rollout: per-phase progress, the halt
// reason, the engine's next step, the controls the role allows and, in
// approval mode, the devices waiting for approval.
func (u *UI) rollout(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := rolloutID(r)
	if err != nil {
		return err
	}
	d, err := u.rolloutData(r.Context(), id)
	if err != nil {
		return err
	}
	u.render(w, r, http.StatusOK, "rollout", &view{Title: fmt.Sprintf("Rollout %d", id), Nav: "rollouts", S: s, Data: d})
	return nil
}

// rolloutLive streams the rollout page's live part.
func (u *UI) rolloutLive(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := rolloutID(r)
	if err != nil {
		return err
	}
	if _, err := u.Store.FindRolloutByID(r.Context(), id); err != nil {
		return err
	}
	return u.stream(w, r, s, func(ctx context.Context) ([]sseEvent, error) {
		d, err := u.rolloutData(ctx, id)
		if err != nil {
			return nil, err
		}
		b, err := u.fragment("rollout", "rollout-live", &view{S: s, Data: d})
		if err != nil {
			return nil, err
		}
		return []sseEvent{{Name: "rollout-live", Data: b}}, nil
	})
}

// rolloutActions maps a form's action to the API call.
var rolloutActions = map[string]string{"start": "started", "pause": "paused", "resume": "resumed", "abort": "aborted", "advance": "advanced"}

// rolloutAction starts, pauses, resumes, aborts or advances a rollout
// through the management API (the rollout service audits it).
func (u *UI) rolloutAction(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := rolloutID(r)
	if err != nil {
		return err
	}
	action := r.PathValue("action")
	done, ok := rolloutActions[action]
	if !ok {
		return &apiError{Status: http.StatusNotFound, Message: "There is no such page."}
	}
	var body any
	switch action {
	case "abort":
		if r.PostForm.Get("confirm") != "yes" {
			flash(w, "!Tick the confirmation box to abort the rollout.")
			http.Redirect(w, r, rolloutURL(id), http.StatusSeeOther)
			return nil
		}
		body = map[string]string{"reason": r.PostForm.Get("reason")}
	case "advance":
		from, err := strconv.Atoi(r.PostForm.Get("from"))
		if err != nil {
			return &apiError{Status: http.StatusBadRequest, Message: "The form names no current phase."}
		}
		body = map[string]int{"from": from}
	}
	return u.act(w, r, s, rolloutURL(id), "POST", fmt.Sprintf("/api/v1/rollouts/%d/%s", id, action), body,
		fmt.Sprintf("Rollout %d %s.", id, done))
}

func rolloutURL(id int64) string { return "/ui/rollouts/" + strconv.FormatInt(id, 10) }

// approveRollout approves waiting devices of an approval-mode rollout:
// all of them, one device, or a group.
func (u *UI) approveRollout(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := rolloutID(r)
	if err != nil {
		return err
	}
	back := r.PostForm.Get("back")
	if !uiPath(back) {
		back = rolloutURL(id)
	}
	body := map[string]any{}
	switch {
	case r.PostForm.Get("all") == "yes":
		body["all"] = true
	case r.PostForm.Get("device") != "":
		body["device_ids"] = []string{r.PostForm.Get("device")}
	case r.PostForm.Get("group") != "":
		body["group"] = r.PostForm.Get("group")
	default:
		flash(w, "!Choose what to approve.")
		http.Redirect(w, r, back, http.StatusSeeOther)
		return nil
	}
	return u.act(w, r, s, back, "POST", fmt.Sprintf("/api/v1/rollouts/%d/approvals", id), body, "Approved.")
}

type approvalsData struct {
	Rollouts []*rolloutData
}

// approvals is the queue of the industrial flow: every unfinished
// approval-mode rollout with the devices that wait for an administrator.
func (u *UI) approvals(w http.ResponseWriter, r *http.Request, s *session) error {
	d := &approvalsData{}
	for _, st := range []koshin.RolloutState{koshin.RolloutRunning, koshin.RolloutPaused, koshin.RolloutHalted} {
		rs, err := u.Store.FindRollouts(r.Context(), koshin.RolloutFilter{State: st, Page: koshin.SeqPage{Desc: true, Limit: koshin.MaxLimit}})
		if err != nil {
			return err
		}
		for _, ro := range rs {
			if ro.Mode != koshin.ModeApproval {
				continue
			}
			rd, err := u.rolloutData(r.Context(), ro.ID)
			if err != nil {
				return err
			}
			d.Rollouts = append(d.Rollouts, rd)
		}
	}
	u.render(w, r, http.StatusOK, "approvals", &view{Title: "Approvals", Nav: "approvals", S: s, Data: d})
	return nil
}
