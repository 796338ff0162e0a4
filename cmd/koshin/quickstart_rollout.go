package main

import (
	"context"
	"fmt"
	"net/url"

	"github.com/koshin-ota/koshin"
)

// labStatus is a rollout's status as GET /api/v1/rollouts/{id} answers.
type labStatus struct {
	Rollout koshin.Rollout      `json:"rollout"`
	Phases  []koshin.PhaseStats `json:"phases"`
}

// totals adds up the phases' counts.
func (s labStatus) totals() (succeeded, failed, inProgress, declined int) {
	for _, p := range s.Phases {
		succeeded += p.Succeeded
		failed += p.Failed
		inProgress += p.InProgress + p.Waiting
		declined += p.Declined
	}
	return
}

// startRollout creates the rollout spec describes and starts it.
func (l *lab) startRollout(ctx context.Context, spec map[string]any) (int64, error) {
	var created struct{ Rollout koshin.Rollout }
	if err := l.api.do(ctx, "POST", "/api/v1/rollouts", spec, &created); err != nil {
		return 0, fmt.Errorf("create rollout: %w", err)
	}
	id := created.Rollout.ID
	if err := l.api.do(ctx, "POST", fmt.Sprintf("/api/v1/rollouts/%d/start", id), nil, nil); err != nil {
		return 0, fmt.Errorf("start rollout: %w", err)
	}
	return id, nil
}

func (l *lab) rolloutStatus(ctx context.Context, id int64) (labStatus, error) {
	var st labStatus
	err := l.api.do(ctx, "GET", fmt.Sprintf("/api/v1/rollouts/%d", id), nil, &st)
	return st, err
}

// maxEventPages bounds countEvents.
const maxEventPages = 1000

// countEvents counts the server's stored events of type typ, from
// devices in ids if ids is not nil.
func (l *lab) countEvents(ctx context.Context, typ koshin.EventType, ids map[string]bool) (int, error) {
	n, cursor := 0, ""
	for range maxEventPages {
		q := url.Values{"type": {string(typ)}, "limit": {fmt.Sprint(koshin.MaxLimit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Items []koshin.Event
			Next  string
		}
		if err := l.api.do(ctx, "GET", "/api/v1/events?"+q.Encode(), nil, &page); err != nil {
			return n, err
		}
		for _, e := range page.Items {
			if ids == nil || ids[e.DeviceID] {
				n++
			}
		}
		if page.Next == "" {
			return n, nil
		}
		cursor = page.Next
	}
	return n, fmt.Errorf("more than %d pages of %s events", maxEventPages, typ)
}
