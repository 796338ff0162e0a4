package deviceapi

import (
	"fmt"
	"time"

	"github.com/koshin-ota/koshin/trust"
)

// EventType is a status transition of an update or a security event.
type EventType string

const (
	EventDownloading   EventType = "downloading"
	EventDownloaded    EventType = "downloaded"
	EventInstalling    EventType = "installing"
	EventRebooting     EventType = "rebooting"
	EventCommitted     EventType = "committed" // booted the new image and healthy
	EventFailed        EventType = "failed"
	EventRolledBack    EventType = "rolled-back"
	EventRejected      EventType = "rejected-invalid-update" // EN 303 645 5.3-9
	EventPostponed     EventType = "postponed"
	EventDeclined      EventType = "declined"
	EventTamper        EventType = "tamper-detected" // EN 303 645 5.7-2
	EventLockout       EventType = "lockout"
	EventFactoryReset  EventType = "factory-reset"
	EventSettingsChang EventType = "settings-changed"
	// EventAlertCleared: an alert raised by EventTamper was cleared, by a
	// committed update or by an administrator on the device.
	EventAlertCleared EventType = "alert-cleared"
)

var eventTypes = map[EventType]bool{
	EventDownloading: true, EventDownloaded: true, EventInstalling: true,
	EventRebooting: true, EventCommitted: true, EventFailed: true,
	EventRolledBack: true, EventRejected: true, EventPostponed: true,
	EventDeclined: true, EventTamper: true, EventLockout: true,
	EventFactoryReset: true, EventSettingsChang: true, EventAlertCleared: true,
}

// Event is one report. ID is chosen by the device (random, unique) so that a
// retried batch is not counted twice.
type Event struct {
	ID     string    `json:"id"`
	Type   EventType `json:"type"`
	Target string    `json:"target,omitempty"`
	// Reason is a short machine-readable cause (e.g. "rollback",
	// "health-check") and Detail a human-readable explanation.
	Reason string    `json:"reason,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Time   time.Time `json:"time"`
}

// Validate checks an event's form and size.
func (e *Event) Validate() error {
	if err := trust.ValidateID("event ID", e.ID); err != nil {
		return err
	}
	if !eventTypes[e.Type] {
		return fmt.Errorf("%w: unknown event type %q", trust.ErrInvalid, e.Type)
	}
	if len(e.Target) > maxText || len(e.Reason) > maxShort || len(e.Detail) > maxText {
		return fmt.Errorf("%w: event %s: field too long", trust.ErrInvalid, e.ID)
	}
	return nil
}

// EventBatch is a POST /device/v1/events body.
type EventBatch struct {
	Events []Event `json:"events"`
}

// Validate checks the batch and every event in it.
func (b *EventBatch) Validate() error {
	if len(b.Events) == 0 || len(b.Events) > MaxEvents {
		return fmt.Errorf("%w: need 1-%d events", trust.ErrInvalid, MaxEvents)
	}
	for i := range b.Events {
		if err := b.Events[i].Validate(); err != nil {
			return err
		}
	}
	return nil
}

// EventsResponse acknowledges stored events (including ones already stored
// by an earlier attempt).
type EventsResponse struct {
	Accepted int `json:"accepted"`
}
