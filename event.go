package koshin

import (
	"context"
	"time"
)

// EventType is a device-reported update transition or security event.
type EventType string

const (
	EventDownloading  EventType = "downloading"
	EventDownloaded   EventType = "downloaded"
	EventInstalling   EventType = "installing"
	EventRebooting    EventType = "rebooting"
	EventCommitted    EventType = "committed" // booted the new image and healthy
	EventFailed       EventType = "failed"
	EventRolledBack   EventType = "rolled-back"
	EventRejected     EventType = "rejected-invalid-update" // EN 303 645 5.3-9
	EventPostponed    EventType = "postponed"
	EventDeclined     EventType = "declined"
	EventTamper       EventType = "tamper-detected" // EN 303 645 5.7-2
	EventLockout      EventType = "lockout"         // CCDS STS13 on the device
	EventFactoryReset EventType = "factory-reset"   // CCDS HLC06
	EventSettings     EventType = "settings-changed"
	// EventAlertCleared: the device left the restricted state of a tamper
	// alert, by a committed update or an administrator's action on it.
	EventAlertCleared EventType = "alert-cleared"
)

var eventTypes = map[EventType]bool{
	EventDownloading: true, EventDownloaded: true, EventInstalling: true,
	EventRebooting: true, EventCommitted: true, EventFailed: true,
	EventRolledBack: true, EventRejected: true, EventPostponed: true,
	EventDeclined: true, EventTamper: true, EventLockout: true,
	EventFactoryReset: true, EventSettings: true, EventAlertCleared: true,
}

// Validate reports whether t is a known type.
func (t EventType) Validate() error {
	if !eventTypes[t] {
		return Errorf(EINVALID, "Unknown event type %q.", t)
	}
	return nil
}

// Security reports whether t is a security event rather than update progress.
func (t EventType) Security() bool {
	return t == EventTamper || t == EventLockout || t == EventRejected || t == EventFactoryReset || t == EventAlertCleared
}

// Event is one device report (CCDS UPD09). EventID is chosen by the device
// (random, unique per device) so that a retried batch is stored once and
// never counted twice.
type Event struct {
	Seq      int64     `json:"seq"`
	DeviceID string    `json:"device_id"`
	EventID  string    `json:"event_id"`
	Type     EventType `json:"type"`
	// ReleaseName is the target the event is about, if any.
	ReleaseName string `json:"release,omitempty"`
	// Reason is a short machine-readable cause ("health-check"), Detail a
	// human-readable explanation.
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
	// DeviceTime is the device's clock, which may be unset or wrong;
	// ReceivedAt is the server's.
	DeviceTime time.Time `json:"device_time,omitzero"`
	ReceivedAt time.Time `json:"received_at"`
	// AssignmentID is the assignment the event moved, if it moved one.
	AssignmentID int64 `json:"assignment_id,omitempty"`
}

// Validate checks the device-supplied fields.
func (e *Event) Validate() error {
	if err := validateHex("Device ID", e.DeviceID, 64); err != nil {
		return err
	}
	if err := ValidateID("Event ID", e.EventID); err != nil {
		return err
	}
	if err := e.Type.Validate(); err != nil {
		return err
	}
	if e.ReleaseName != "" {
		if err := ValidateReleaseName(e.ReleaseName); err != nil {
			return err
		}
	}
	if err := validateText("Event reason", e.Reason, MaxShortLen); err != nil {
		return err
	}
	return validateText("Event detail", e.Detail, MaxTextLen)
}

// EventFilter lists events by sequence.
type EventFilter struct {
	DeviceID string    `json:"device_id,omitempty"`
	Type     EventType `json:"type,omitempty"`
	Since    time.Time `json:"since,omitzero"` // received at or after
	Page     SeqPage   `json:"page"`
}

// Validate checks the filter.
func (f *EventFilter) Validate() error {
	if f.DeviceID != "" {
		if err := validateHex("Device ID", f.DeviceID, 64); err != nil {
			return err
		}
	}
	if f.Type != "" {
		if err := f.Type.Validate(); err != nil {
			return err
		}
	}
	return f.Page.Validate()
}

// EventStore keeps device events, append-only.
type EventStore interface {
	// RecordEvent stores an event and sets Seq, ReceivedAt (now) and
	// AssignmentID. In the same transaction it moves the device's active
	// assignment for the event's release as AssignmentState.Next says,
	// refreshing its silence deadline. An event whose (device, event ID)
	// was stored before changes nothing and returns created=false with the
	// stored event's fields, so retries are harmless. Returns EINVALID, or
	// ENOTFOUND for an unknown device.
	RecordEvent(ctx context.Context, e *Event, now time.Time) (created bool, err error)

	// FindEvents lists events matching f.
	FindEvents(ctx context.Context, f EventFilter) ([]*Event, error)

	// CountEventsByType counts events received at or after since, per type:
	// the input of telemetry anomaly detection (EN 303 645 5.10-1).
	CountEventsByType(ctx context.Context, since time.Time) (map[EventType]int, error)
}
