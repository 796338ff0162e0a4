package compliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"time"

	"github.com/koshin-ota/koshin"
)

// MaxFleetSize bounds a fleet-facts JSON document.
const MaxFleetSize = 1 << 20

// maxAdvisories bounds FleetFacts.PatchLatency.
const maxAdvisories = 1000

// Fleet is what the running system observes (evidence kind F). The server
// implements it from its device reports and events; StaticFleet serves a
// fixed snapshot (tests, `koshin compliance report --fleet FILE`).
type Fleet interface {
	// Facts returns one consistent snapshot of the fleet.
	Facts(ctx context.Context) (*FleetFacts, error)
}

// FleetFacts is a snapshot of fleet observations. Counts of devices refer
// to devices' latest reports; counts of events to the window that ends at
// ObservedAt. Its JSON form is documented in docs/compliance.md.
type FleetFacts struct {
	ObservedAt time.Time `json:"observed_at"`
	WindowDays int       `json:"window_days"`
	Devices    int       `json:"devices"`
	// DistinctIdentities counts distinct device public keys.
	DistinctIdentities  int `json:"distinct_identities"`
	UpdatesEnabled      int `json:"updates_enabled"`
	AutomaticUpdates    int `json:"automatic_updates"`
	UpdateNotifications int `json:"update_notifications"`
	// PollInterval and PollJitter are the devices' effective check-in
	// interval and random jitter, in seconds.
	PollInterval        Distribution  `json:"poll_interval_seconds"`
	PollJitter          Distribution  `json:"poll_jitter_seconds"`
	SignatureRejections int           `json:"signature_rejections"`
	RejectingDevices    int           `json:"rejecting_devices"`
	Rollbacks           int           `json:"rollbacks"`
	Lockouts            int           `json:"lockouts"`
	TamperAlerts        int           `json:"tamper_alerts"`
	RestrictedDevices   int           `json:"restricted_devices"`
	BootIntegrity       BootIntegrity `json:"boot_integrity"`
	FactoryResets       int           `json:"factory_resets"`
	CredentialChanges   int           `json:"credential_changes"`
	// AnomalyAlerts and NetworkListeners are nil while the server does not
	// measure them yet; nil is "unknown", never zero.
	AnomalyAlerts    *int              `json:"anomaly_alerts"`
	NetworkListeners *int              `json:"network_listeners"`
	PatchLatency     []AdvisoryLatency `json:"patch_latency"`
}

// Distribution summarises a per-device quantity.
type Distribution struct {
	Samples int   `json:"samples"`
	Min     int64 `json:"min"`
	P50     int64 `json:"p50"`
	P90     int64 `json:"p90"`
	Max     int64 `json:"max"`
}

// AddDevice counts one device's latest report: its update settings
// (automatic counts only with updates on), whether it restricted itself,
// and its boot-integrity result.
func (f *FleetFacts) AddDevice(inv koshin.Inventory) {
	f.Devices++
	set, sec := inv.Settings, inv.Security
	f.UpdatesEnabled += b2i(set.UpdatesEnabled)
	f.AutomaticUpdates += b2i(set.UpdatesEnabled && set.Automatic)
	f.UpdateNotifications += b2i(set.Notifications)
	f.RestrictedDevices += b2i(sec.Restricted)
	switch sec.BootIntegrity {
	case koshin.BootVerified:
		f.BootIntegrity.Verified++
	case koshin.BootUnverified:
		f.BootIntegrity.Unverified++
	case koshin.BootFailed:
		f.BootIntegrity.Failed++
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// DistributionOf summarises xs (sorted in place): count, minimum, median,
// 90th percentile and maximum; the zero Distribution when xs is empty.
func DistributionOf(xs []int64) Distribution {
	if len(xs) == 0 {
		return Distribution{}
	}
	slices.Sort(xs)
	at := func(p float64) int64 { return xs[min(len(xs)-1, int(p*float64(len(xs))))] }
	return Distribution{Samples: len(xs), Min: xs[0], P50: at(0.5), P90: at(0.9), Max: xs[len(xs)-1]}
}

// BootIntegrity counts devices by the result of their secure-boot check.
type BootIntegrity struct {
	Verified   int `json:"verified"`
	Unverified int `json:"unverified"`
	Failed     int `json:"failed"`
}

// AdvisoryLatency is how fast one security release reached the devices it
// fixes. Hours are nil until the share is reached.
type AdvisoryLatency struct {
	Advisory        string    `json:"advisory"`
	Release         string    `json:"release"`
	ReleasedAt      time.Time `json:"released_at"`
	AffectedDevices int       `json:"affected_devices"`
	HoursTo50       *float64  `json:"hours_to_50_percent"`
	HoursTo90       *float64  `json:"hours_to_90_percent"`
}

// StaticFleet is a Fleet with fixed facts.
type StaticFleet struct{ F FleetFacts }

// Facts returns a copy of the fixed facts after validating them.
func (s StaticFleet) Facts(context.Context) (*FleetFacts, error) {
	f := s.F
	return &f, f.Validate()
}

// ReadFleetFacts decodes and validates a FleetFacts JSON document.
func ReadFleetFacts(r io.Reader) (*FleetFacts, error) {
	d := json.NewDecoder(io.LimitReader(r, MaxFleetSize+1))
	d.DisallowUnknownFields()
	f := new(FleetFacts)
	if err := d.Decode(f); err != nil {
		return nil, fmt.Errorf("fleet facts: %w", err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("fleet facts: trailing data or larger than 1 MiB")
	}
	return f, f.Validate()
}

var advisoryID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// Validate checks ranges and that device counts do not exceed Devices.
func (f *FleetFacts) Validate() error {
	var ps problems
	if f.ObservedAt.IsZero() {
		ps.add("observed_at", "required")
	}
	if f.WindowDays < 1 || f.WindowDays > 3650 {
		ps.add("window_days", "must be 1 to 3650")
	}
	f.validateCounts(&ps)
	f.PollInterval.validate(&ps, "poll_interval_seconds")
	f.PollJitter.validate(&ps, "poll_jitter_seconds")
	f.validateLatency(&ps)
	if len(ps) > 0 {
		return &FleetError{Problems: ps}
	}
	return nil
}

// FleetError lists every problem found in fleet facts.
type FleetError struct{ Problems []string }

func (e *FleetError) Error() string { return "invalid fleet facts: " + joinProblems(e.Problems) }

func (f *FleetFacts) validateCounts(ps *problems) {
	b := f.BootIntegrity
	perDevice := map[string]int{
		"distinct_identities": f.DistinctIdentities, "updates_enabled": f.UpdatesEnabled,
		"automatic_updates": f.AutomaticUpdates, "update_notifications": f.UpdateNotifications,
		"rejecting_devices": f.RejectingDevices, "restricted_devices": f.RestrictedDevices,
		"boot_integrity": b.Verified + b.Unverified + b.Failed, "network_listeners": deref(f.NetworkListeners),
	}
	events := map[string]int{
		"devices": f.Devices, "signature_rejections": f.SignatureRejections, "rollbacks": f.Rollbacks,
		"lockouts": f.Lockouts, "tamper_alerts": f.TamperAlerts, "factory_resets": f.FactoryResets,
		"credential_changes": f.CredentialChanges, "anomaly_alerts": deref(f.AnomalyAlerts),
		"boot_integrity.verified": b.Verified, "boot_integrity.unverified": b.Unverified, "boot_integrity.failed": b.Failed,
	}
	for _, k := range sortedKeys(perDevice) {
		if n := perDevice[k]; n < 0 || n > f.Devices {
			ps.add(k, "must be 0 to devices (%d), not %d", f.Devices, n)
		}
	}
	for _, k := range sortedKeys(events) {
		if events[k] < 0 {
			ps.add(k, "must not be negative")
		}
	}
}

func (d Distribution) validate(ps *problems, path string) {
	if d.Samples < 0 {
		ps.add(path+".samples", "must not be negative")
	}
	if d.Samples > 0 && !(0 <= d.Min && d.Min <= d.P50 && d.P50 <= d.P90 && d.P90 <= d.Max) {
		ps.add(path, "needs 0 ≤ min ≤ p50 ≤ p90 ≤ max")
	}
}

func (f *FleetFacts) validateLatency(ps *problems) {
	if len(f.PatchLatency) > maxAdvisories {
		ps.add("patch_latency", "at most %d advisories", maxAdvisories)
		return
	}
	for i, a := range f.PatchLatency {
		path := fmt.Sprintf("patch_latency[%d]", i)
		if !advisoryID.MatchString(a.Advisory) || koshin.ValidateReleaseName(a.Release) != nil {
			ps.add(path, "advisory must be an ID of 1-128 letters, digits and ._:-, release a release name")
		}
		if a.ReleasedAt.IsZero() || a.ReleasedAt.After(f.ObservedAt) || a.AffectedDevices < 0 {
			ps.add(path, "released_at must be set and not after observed_at; affected_devices not negative")
		}
		h50, h90 := a.HoursTo50, a.HoursTo90
		if (h50 != nil && *h50 < 0) || (h90 != nil && (h50 == nil || *h90 < *h50)) {
			ps.add(path, "hours must be ≥ 0 and reaching 90 %% needs 50 %% first")
		}
	}
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}
