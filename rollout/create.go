package rollout

import (
	"context"
	"fmt"

	"github.com/koshin-ota/koshin"
)

// Plan previews how a new rollout would split its devices, computed from
// the devices eligible now and the rollout's recorded seed. Start plans
// again from the devices eligible then, with the same seed, so the preview
// and the real plan agree when the fleet has not changed in between.
type Plan struct {
	Seed     int64 `json:"seed"`
	Eligible int   `json:"eligible"`
	// UpdatesDisabled counts selected devices left out because their
	// agent reports updates switched off (CCDS UPE05).
	UpdatesDisabled int            `json:"updates_disabled"`
	Phases          []PlannedPhase `json:"phases"`
}

// PlannedPhase is one phase of a plan: how many devices it adds and how
// they spread over the sampling strata (hardware ID and stratify tags).
type PlannedPhase struct {
	Devices int            `json:"devices"`
	Strata  map[string]int `json:"strata"`
}

// Create stores a draft rollout from spec (its definition fields; state
// fields are ignored) with CreatedBy set to principal and a recorded
// sampling seed, and previews its phase plan. A selector that matches no
// eligible device is EINVALID: such a rollout could never do anything.
// Returns ENOTFOUND for an unknown release and ECONFLICT for a revoked one.
func (s *Service) Create(ctx context.Context, principal string, spec koshin.Rollout) (*koshin.Rollout, *Plan, error) {
	r, plan, err := s.create(ctx, principal, spec)
	target := "rollout:new"
	if r != nil {
		target = rolloutTarget(r.ID)
	}
	s.record(ctx, principal, "rollout.create", target, err, fmt.Sprintf("release %s mode %s", spec.ReleaseName, spec.Mode))
	return r, plan, err
}

func (s *Service) create(ctx context.Context, principal string, spec koshin.Rollout) (*koshin.Rollout, *Plan, error) {
	r := definition(spec)
	r.CreatedBy = principal
	if r.Seed == 0 {
		r.Seed = s.seed()
	}
	if err := r.Validate(); err != nil {
		return nil, nil, err
	}
	rel, err := s.Store.FindReleaseByName(ctx, r.ReleaseName)
	if err != nil {
		return nil, nil, err
	}
	if rel.Revoked {
		return nil, nil, koshin.Errorf(koshin.ECONFLICT, "Release %s is revoked.", rel.Name)
	}
	plan, err := s.preview(ctx, &r, rel)
	if err != nil {
		return nil, nil, err
	}
	if plan.Eligible == 0 {
		return nil, nil, koshin.Errorf(koshin.EINVALID, "No eligible device matches the selector (%d have updates switched off).", plan.UpdatesDisabled)
	}
	if err := s.Store.CreateRollout(ctx, &r); err != nil {
		return nil, nil, err
	}
	return &r, plan, nil
}

// definition keeps the operator-supplied fields of spec, so that a client
// cannot smuggle in a state, phase or timestamps.
func definition(spec koshin.Rollout) koshin.Rollout {
	return koshin.Rollout{
		Name: spec.Name, ReleaseName: spec.ReleaseName, Selector: spec.Selector,
		Phases: spec.Phases, Threshold: spec.Threshold, SilenceTimeout: spec.SilenceTimeout,
		Window: spec.Window, RatePerMinute: spec.RatePerMinute, Mode: spec.Mode,
		StratifyTags: spec.StratifyTags, Seed: spec.Seed,
	}
}

// preview resolves the selector and plans the phases.
func (s *Service) preview(ctx context.Context, r *koshin.Rollout, rel *koshin.Release) (*Plan, error) {
	plan := &Plan{Seed: r.Seed}
	var cands []koshin.Candidate
	err := s.selected(ctx, &r.Selector, func(d *koshin.Device) {
		switch {
		case r.Selector.Eligible(d, rel):
			cands = append(cands, koshin.Candidate{DeviceID: d.ID, Stratum: koshin.Stratum(d, r.StratifyTags)})
		case r.Selector.Targets(d, rel):
			plan.UpdatesDisabled++
		}
	})
	if err != nil {
		return nil, err
	}
	plan.Eligible = len(cands)
	sizes := koshin.PhaseSizes(r.Phases, len(cands))
	plan.Phases = make([]PlannedPhase, len(sizes))
	for i, n := range sizes {
		plan.Phases[i] = PlannedPhase{Devices: n, Strata: map[string]int{}}
	}
	strata := make(map[string]string, len(cands))
	for _, c := range cands {
		strata[c.DeviceID] = c.Stratum
	}
	for _, m := range koshin.PlanPhases(cands, sizes, r.Seed) {
		plan.Phases[m.Phase].Strata[strata[m.DeviceID]]++
	}
	return plan, nil
}

// selected calls fn for every active device the selector may match:
// named devices are looked up directly, anything else pages through the
// active fleet once.
func (s *Service) selected(ctx context.Context, sel *koshin.Selector, fn func(*koshin.Device)) error {
	if len(sel.DeviceIDs) > 0 {
		seen := make(map[string]bool, len(sel.DeviceIDs))
		for _, id := range sel.DeviceIDs {
			if seen[id] {
				continue
			}
			seen[id] = true
			d, err := s.Store.FindDeviceByID(ctx, id)
			if isNotFound(err) {
				continue
			} else if err != nil {
				return err
			}
			fn(d)
		}
		return nil
	}
	f := koshin.DeviceFilter{Status: koshin.DeviceActive, Limit: koshin.MaxLimit}
	if len(sel.Groups) == 1 {
		f.Group = sel.Groups[0]
	}
	if len(sel.HardwareIDs) == 1 {
		f.HardwareID = sel.HardwareIDs[0]
	}
	return eachDevice(ctx, s.Store, f, fn)
}

// eachDevice pages through the devices matching f.
func eachDevice(ctx context.Context, st Store, f koshin.DeviceFilter, fn func(*koshin.Device)) error {
	for {
		page, err := st.FindDevices(ctx, f)
		if err != nil {
			return err
		}
		for _, d := range page {
			fn(d)
		}
		if len(page) < f.Limit {
			return nil
		}
		f.After = page[len(page)-1].ID
	}
}
