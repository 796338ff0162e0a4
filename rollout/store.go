package rollout

import (
	"context"
	"time"

	"github.com/koshin-ota/koshin"
)

// Store is the part of koshin.Store this package uses; every koshin.Store
// satisfies it. Naming the subset keeps fakes small and documents which
// transactions the rollout engine relies on.
type Store interface {
	FindDeviceByID(ctx context.Context, id string) (*koshin.Device, error)
	FindDevices(ctx context.Context, f koshin.DeviceFilter) ([]*koshin.Device, error)
	FindReleaseByName(ctx context.Context, name string) (*koshin.Release, error)

	koshin.RolloutStore
	koshin.AssignmentStore

	RecordEvent(ctx context.Context, e *koshin.Event, now time.Time) (created bool, err error)
	AppendAudit(ctx context.Context, e *koshin.AuditEntry) error
}

var _ Store = koshin.Store(nil)
