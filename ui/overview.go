package ui

import (
	"context"
	"net/http"

	"github.com/koshin-ota/koshin"
)

type overviewData struct {
	Fleet    *fleetSummary
	History  *versionHistory
	Chart    *chart
	Rollouts []*koshin.Rollout
}

// overview is the fleet at a glance (CCDS STS03, SSS06): devices by
// version, hardware and condition, versions over time, devices that need
// attention and the rollouts under way. The counts refresh live.
func (u *UI) overview(w http.ResponseWriter, r *http.Request, s *session) error {
	d, err := u.overviewData(r.Context(), true)
	if err != nil {
		return err
	}
	u.render(w, r, http.StatusOK, "overview", &view{Title: "Fleet overview", Nav: "overview", S: s, Data: d})
	return nil
}

func (u *UI) overviewData(ctx context.Context, withHistory bool) (*overviewData, error) {
	fs, err := u.fleetSummary(ctx)
	if err != nil {
		return nil, err
	}
	d := &overviewData{Fleet: fs}
	if withHistory {
		if d.History, err = u.versionHistory(ctx); err != nil {
			return nil, err
		}
		d.Chart = versionChart(d.History)
	}
	for _, st := range []koshin.RolloutState{koshin.RolloutRunning, koshin.RolloutPaused, koshin.RolloutHalted} {
		rs, err := u.Store.FindRollouts(ctx, koshin.RolloutFilter{State: st, Page: koshin.SeqPage{Desc: true, Limit: 20}})
		if err != nil {
			return nil, err
		}
		d.Rollouts = append(d.Rollouts, rs...)
	}
	return d, nil
}

// fleetLive streams the overview's counts.
func (u *UI) fleetLive(w http.ResponseWriter, r *http.Request, s *session) error {
	return u.stream(w, r, s, func(ctx context.Context) ([]sseEvent, error) {
		d, err := u.overviewData(ctx, false)
		if err != nil {
			return nil, err
		}
		b, err := u.fragment("overview", "fleet-live", &view{S: s, Data: d})
		if err != nil {
			return nil, err
		}
		return []sseEvent{{Name: "fleet-live", Data: b}}, nil
	})
}
