package rollout

import (
	"context"
	"fmt"

	"github.com/koshin-ota/koshin"
)

// MaxEvents bounds one RecordEvents batch; it equals deviceapi.MaxEvents.
const MaxEvents = 100

// RecordEvents stores a device's events in order (CCDS UPD09). The store
// applies each, in the event's own transaction, to the device's active
// assignment for the event's release as koshin.AssignmentState.Next says:
// success counts only at committed (booted and healthy from the new
// image); failed, rolled back and rejected are failures; postponed and
// declined come from the device's user and are ignored in forced mode
// (CCDS UPD11). Each event is identified by its device-chosen ID, so a
// retried batch is stored and counted once. Every assignment an event
// moves gets an audit entry, and failures notify administrators (CCDS
// UPD10).
//
// The whole batch is validated first: EINVALID stores nothing. On another
// error the events before the failing one are stored and the device's
// retry of the batch stores the rest. Returns how many events were new.
func (s *Service) RecordEvents(ctx context.Context, deviceID string, events []koshin.Event) (int, error) {
	batch, err := validEvents(deviceID, events)
	if err != nil {
		return 0, err
	}
	now := s.now()
	created := 0
	for i := range batch {
		e := &batch[i]
		fresh, err := s.Store.RecordEvent(ctx, e, now)
		if err != nil {
			return created, err
		}
		if !fresh {
			continue // stored by an earlier attempt, which did the rest
		}
		created++
		if e.AssignmentID != 0 {
			s.moved(ctx, e)
		}
	}
	return created, nil
}

// validEvents copies events with the authenticated device's ID, so that a
// device can never report for another, and validates each.
func validEvents(deviceID string, events []koshin.Event) ([]koshin.Event, error) {
	if len(events) == 0 || len(events) > MaxEvents {
		return nil, koshin.Errorf(koshin.EINVALID, "Send 1-%d events at a time.", MaxEvents)
	}
	batch := make([]koshin.Event, len(events))
	for i, e := range events {
		e.DeviceID, e.Seq, e.AssignmentID = deviceID, 0, 0
		if err := e.Validate(); err != nil {
			return nil, err
		}
		batch[i] = e
	}
	return batch, nil
}

// moved audits an assignment change a device event caused, and notifies
// when it is a failure.
func (s *Service) moved(ctx context.Context, e *koshin.Event) {
	detail := fmt.Sprintf("event %s", e.EventID)
	if e.Reason != "" {
		detail += " reason " + e.Reason
	}
	s.record(ctx, "device:"+e.DeviceID, "assignment."+string(e.Type), assignmentTarget(e.AssignmentID), nil, detail)
	kind, ok := failureKinds[e.Type]
	if !ok {
		return
	}
	n := Notification{
		ID: fmt.Sprintf("assignment-%d-%s", e.AssignmentID, kind), Kind: kind, Time: e.ReceivedAt,
		ReleaseName: e.ReleaseName, DeviceID: e.DeviceID, AssignmentID: e.AssignmentID,
		Reason: truncate(joinNonEmpty(e.Reason, e.Detail), koshin.MaxTextLen),
	}
	if a, err := s.Store.FindAssignmentByID(ctx, e.AssignmentID); err == nil {
		n.RolloutID, n.Phase, n.ReleaseName = a.RolloutID, a.Phase+1, a.ReleaseName
	}
	notify(ctx, s.Notifier, s.logger(), n)
}

// failureKinds maps the device events that end an assignment in failure
// to their notification.
var failureKinds = map[koshin.EventType]Kind{
	koshin.EventFailed:     KindFailed,
	koshin.EventRolledBack: KindRolledBack,
	koshin.EventRejected:   KindRejected,
}

func joinNonEmpty(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + ": " + b
}
