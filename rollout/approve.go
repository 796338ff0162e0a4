package rollout

import (
	"context"
	"fmt"
	"slices"

	"github.com/koshin-ota/koshin"
)

// Approval names what an administrator approves in an approval-mode
// rollout (the CCDS industrial flow): every waiting device, named devices,
// or the devices of one group. Exactly one must be set, so that an empty
// request can never approve the whole rollout by accident.
type Approval struct {
	All       bool     `json:"all,omitempty"`
	DeviceIDs []string `json:"device_ids,omitempty"`
	Group     string   `json:"group,omitempty"`
}

// Validate checks that exactly one selection is set and well formed.
func (a *Approval) Validate() error {
	set := 0
	for _, b := range []bool{a.All, len(a.DeviceIDs) > 0, a.Group != ""} {
		if b {
			set++
		}
	}
	if set != 1 {
		return koshin.Errorf(koshin.EINVALID, "Approve either all devices, named devices or one group.")
	}
	switch {
	case a.Group != "":
		return koshin.ValidateID("Group", a.Group)
	case len(a.DeviceIDs) > 0:
		sel := koshin.Selector{DeviceIDs: a.DeviceIDs}
		return sel.Validate() // bounds the list and checks each ID's form
	}
	return nil
}

func (a *Approval) String() string {
	switch {
	case a.All:
		return "all devices"
	case a.Group != "":
		return "group " + a.Group
	}
	return fmt.Sprintf("%d devices", len(a.DeviceIDs))
}

// approveBatch is how many devices one approval transaction covers; a
// crash between batches leaves some approved, and repeating the request
// approves the rest (approving twice changes nothing).
const approveBatch = koshin.MaxLimit

// Approve moves the selected assignments of rollout id from
// awaiting-approval to pending, after which the devices are offered the
// update at their next check-in, within the window and rate limit. Only
// assignments that exist and wait for approval are affected. Returns the
// number approved; ENOTFOUND; EINVALID if the selection is malformed or the
// rollout is not in approval mode; ECONFLICT if it has ended.
func (s *Service) Approve(ctx context.Context, principal string, id int64, a Approval) (int, error) {
	n, err := s.approve(ctx, id, a)
	s.record(ctx, principal, "rollout.approve", rolloutTarget(id), err, fmt.Sprintf("%s: %d approved", a.String(), n))
	return n, err
}

func (s *Service) approve(ctx context.Context, id int64, a Approval) (int, error) {
	if err := a.Validate(); err != nil {
		return 0, err
	}
	r, err := s.Store.FindRolloutByID(ctx, id)
	if err != nil {
		return 0, err
	}
	if r.Mode != koshin.ModeApproval {
		return 0, koshin.Errorf(koshin.EINVALID, "Rollout %d is in %s mode, not approval mode.", id, r.Mode)
	}
	if r.State.Terminal() {
		return 0, koshin.Errorf(koshin.ECONFLICT, "Rollout %d is %s.", id, r.State)
	}
	now := s.now()
	switch {
	case a.All:
		return s.Store.ApproveAssignments(ctx, id, nil, now)
	case a.Group != "":
		return s.approveGroup(ctx, id, a.Group)
	}
	total := 0
	for ids := range slices.Chunk(a.DeviceIDs, approveBatch) {
		n, err := s.Store.ApproveAssignments(ctx, id, ids, now)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (s *Service) approveGroup(ctx context.Context, id int64, group string) (int, error) {
	f := koshin.DeviceFilter{Group: group, Limit: approveBatch}
	total := 0
	for {
		page, err := s.Store.FindDevices(ctx, f)
		if err != nil || len(page) == 0 {
			return total, err // never pass an empty list: it means "all"
		}
		ids := make([]string, len(page))
		for i, d := range page {
			ids[i] = d.ID
		}
		n, err := s.Store.ApproveAssignments(ctx, id, ids, s.now())
		total += n
		if err != nil || len(page) < f.Limit {
			return total, err
		}
		f.After = ids[len(ids)-1]
	}
}
