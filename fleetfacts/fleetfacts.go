// Package fleetfacts observes a koshin fleet for the compliance report
// (evidence kind F): it implements compliance.Fleet on a koshin.Store, so
// that `koshin compliance report`, the management API and the web UI
// compute the same facts from the registry, the event log, the releases
// and the audit log.
//
// What is counted, and from where:
//
//   - devices: active devices that have checked in at least once; their
//     latest report gives the update settings (updates on, automatic,
//     notifications), the boot-integrity result and whether the agent
//     restricted itself after a tamper alert;
//   - distinct identities: distinct public keys among them whose hash is
//     the device ID;
//   - poll schedule: each device's interval (its own override or the
//     server's) and the server's jitter;
//   - events of the window: refused (invalid) updates and the devices that
//     refused them, rollbacks, lockouts, tamper alerts, factory resets;
//   - audit log of the window: operators changing their own passwords,
//     telemetry anomaly alerts (package anomaly);
//   - patch latency: for every security release with advisories imported
//     in the window, the hours from import until 50 % and 90 % of the
//     devices it fixes committed it (or a later release of the component).
//
// The scan reads every active device once, a page at a time; its cost
// grows with the fleet, so callers that serve it often should cache it.
package fleetfacts

import (
	"context"
	"fmt"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/anomaly"
	"github.com/koshin-ota/koshin/compliance"
)

// DefaultWindowDays is the span events and alerts are counted over.
const DefaultWindowDays = 30

// Store is what Fleet reads; koshin.Store implements it.
type Store interface {
	FindDevices(ctx context.Context, f koshin.DeviceFilter) ([]*koshin.Device, error)
	FindEvents(ctx context.Context, f koshin.EventFilter) ([]*koshin.Event, error)
	CountEventsByType(ctx context.Context, since time.Time) (map[koshin.EventType]int, error)
	FindReleases(ctx context.Context, f koshin.ReleaseFilter) ([]*koshin.Release, error)
	FindAuditEntries(ctx context.Context, f koshin.AuditFilter) ([]*koshin.AuditEntry, error)
}

// Fleet computes compliance.FleetFacts from a store.
type Fleet struct {
	Store Store
	// PollInterval and PollJitter are the server's defaults, which devices
	// without an override of their own are told (httpapi.Config).
	PollInterval, PollJitter time.Duration
	// WindowDays is the span counted; 0 means DefaultWindowDays.
	WindowDays int
	Now        func() time.Time
}

var _ compliance.Fleet = (*Fleet)(nil)

// Facts implements compliance.Fleet.
func (fl *Fleet) Facts(ctx context.Context) (*compliance.FleetFacts, error) {
	now := time.Now()
	if fl.Now != nil {
		now = fl.Now()
	}
	days := fl.WindowDays
	if days == 0 {
		days = DefaultWindowDays
	}
	f := &compliance.FleetFacts{ObservedAt: now.UTC(), WindowDays: days, PatchLatency: []compliance.AdvisoryLatency{}}
	since := now.AddDate(0, 0, -days)
	devs, err := fl.devices(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("fleet facts: devices: %w", err)
	}
	steps := []func() error{
		func() error { return fl.events(ctx, f, since) },
		func() error { return fl.audit(ctx, f, since) },
		func() error { return fl.patchLatency(ctx, f, devs, since) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("fleet facts: %w", err)
		}
	}
	return f, f.Validate()
}

// devices scans the active devices that have reported and returns them.
func (fl *Fleet) devices(ctx context.Context, f *compliance.FleetFacts) ([]*koshin.Device, error) {
	var out []*koshin.Device
	keys := map[string]bool{}
	var polls, jitters []int64
	filter := koshin.DeviceFilter{Status: koshin.DeviceActive, Limit: koshin.MaxLimit}
	for {
		page, err := fl.Store.FindDevices(ctx, filter)
		if err != nil {
			return nil, err
		}
		for _, d := range page {
			if d.LastSeenAt.IsZero() {
				continue // enrolled, never reported: nothing to observe yet
			}
			out = append(out, d)
			f.AddDevice(d.Inventory)
			if d.ID == koshin.DeviceID(d.PublicKey) {
				keys[string(d.PublicKey)] = true
			}
			poll := d.PollInterval
			if poll == 0 {
				poll = fl.PollInterval
			}
			polls, jitters = append(polls, int64(poll/time.Second)), append(jitters, int64(fl.PollJitter/time.Second))
		}
		if len(page) < filter.Limit {
			break
		}
		filter.After = page[len(page)-1].ID
	}
	f.DistinctIdentities = len(keys)
	f.PollInterval, f.PollJitter = compliance.DistributionOf(polls), compliance.DistributionOf(jitters)
	return out, nil
}

// events counts the window's security events.
func (fl *Fleet) events(ctx context.Context, f *compliance.FleetFacts, since time.Time) error {
	counts, err := fl.Store.CountEventsByType(ctx, since)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	f.SignatureRejections, f.Rollbacks = counts[koshin.EventRejected], counts[koshin.EventRolledBack]
	f.Lockouts, f.TamperAlerts, f.FactoryResets = counts[koshin.EventLockout], counts[koshin.EventTamper], counts[koshin.EventFactoryReset]
	rejecting := map[string]bool{}
	err = fl.eachEvent(ctx, koshin.EventRejected, since, func(e *koshin.Event) { rejecting[e.DeviceID] = true })
	f.RejectingDevices = min(len(rejecting), f.Devices)
	return err
}

func (fl *Fleet) eachEvent(ctx context.Context, t koshin.EventType, since time.Time, fn func(*koshin.Event)) error {
	filter := koshin.EventFilter{Type: t, Since: since, Page: koshin.SeqPage{Limit: koshin.MaxLimit}}
	for {
		page, err := fl.Store.FindEvents(ctx, filter)
		if err != nil {
			return fmt.Errorf("%s events: %w", t, err)
		}
		for _, e := range page {
			fn(e)
		}
		if len(page) < filter.Page.Limit {
			return nil
		}
		filter.Page.Cursor = page[len(page)-1].Seq
	}
}

// audit counts what the audit log shows: operators changing their own
// passwords, and anomaly alerts if a detector runs.
func (fl *Fleet) audit(ctx context.Context, f *compliance.FleetFacts, since time.Time) error {
	filter := koshin.AuditFilter{Action: "operator.password", Since: since, Page: koshin.SeqPage{Limit: koshin.MaxLimit}}
	for {
		page, err := fl.Store.FindAuditEntries(ctx, filter)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		for _, e := range page {
			f.CredentialChanges += b2i(e.Result == koshin.AuditOK)
		}
		if len(page) < filter.Page.Limit {
			break
		}
		filter.Page.Cursor = page[len(page)-1].Seq
	}
	n, running, err := anomaly.CountAlerts(ctx, fl.Store, since)
	if err != nil {
		return fmt.Errorf("anomaly alerts: %w", err)
	}
	if running {
		f.AnomalyAlerts = &n
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
