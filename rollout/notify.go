package rollout

import (
	"context"
	"time"
)

// Kind is what a notification is about.
type Kind string

// Notification kinds: the events an administrator must hear about without
// watching the UI (CCDS UPD10).
const (
	KindFailed     Kind = "install-failed"          // a device reported a failed install
	KindRolledBack Kind = "rolled-back"             // a device booted back into its old image
	KindRejected   Kind = "rejected-invalid-update" // a device refused the update as invalid (EN 303 645 5.3-9)
	KindSilent     Kind = "silent"                  // devices went silent past their deadline
	KindHalted     Kind = "rollout-halted"          // a failure threshold stopped a rollout
)

// Notification is one message to administrators. ID is unique per
// occurrence and stable across redeliveries, so that a receiver can drop
// duplicates from retries.
type Notification struct {
	ID           string    `json:"id"`
	Kind         Kind      `json:"kind"`
	Time         time.Time `json:"time"`
	RolloutID    int64     `json:"rollout_id,omitempty"`
	Phase        int       `json:"phase,omitempty"` // 1-based, as operators count
	ReleaseName  string    `json:"release,omitempty"`
	DeviceID     string    `json:"device_id,omitempty"`
	AssignmentID int64     `json:"assignment_id,omitempty"`
	// Count is how many devices the notification covers (silent sweeps,
	// assignments cancelled by a halt).
	Count  int    `json:"count,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Notifier delivers notifications. Implementations may block on the
// network; the engine and the service hand notifications to an Outbox,
// whose Notify never does.
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}
