package ui

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/koshin-ota/koshin"
)

// Device conditions: the one state the overview counts a device under,
// in order of precedence.
const (
	condIntegrity = "integrity alert"
	condFailed    = "update failed"
	condSilent    = "silent"
	condNever     = "never checked in"
	condUpdating  = "updating"
	condDisabled  = "updates disabled"
	condOK        = "healthy"
	condRetired   = "decommissioned"
)

var conditions = []string{condIntegrity, condFailed, condSilent, condNever, condUpdating, condDisabled, condOK, condRetired}

// conditionClass is the CSS class of a condition badge.
func conditionClass(c string) string {
	switch c {
	case condIntegrity, condFailed:
		return "bad"
	case condSilent, condNever, condDisabled:
		return "warn"
	case condUpdating:
		return "info"
	case condOK:
		return "ok"
	}
	return "muted"
}

// Scan bounds: the overview reads the registry page by page; past these it
// reports what it saw and says so.
const (
	maxFleetScan      = 200 * koshin.MaxLimit
	maxFailureScan    = 5 * koshin.MaxLimit
	maxFailureLookups = 500
	silentPolls       = 3 // a device silent for this many poll intervals needs attention
	maxAttentionShown = 50
)

// fleetSummary is one pass over the registry.
type fleetSummary struct {
	At                     time.Time
	Took                   time.Duration
	Total, Active, Retired int
	Versions               []countRow
	Hardware               []countRow
	States                 []countRow
	Attention              []attention
	AttentionTotal         int
	Truncated              bool
	// failed maps device ID to its latest assignment when that failed.
	failed map[string]*koshin.Assignment
}

type countRow struct {
	Label string
	N     int
	Of    int
	Class string
	Link  string
}

// Pct is the row's share of the total, for bars.
func (c countRow) Pct() float64 {
	if c.Of == 0 {
		return 0
	}
	return float64(c.N) * 100 / float64(c.Of)
}

type attention struct {
	Device  *koshin.Device
	Reasons []string
	Rollout int64
}

// fleetCache keeps the last summary for a while: a pass reads the whole
// registry, so live pages share one pass, and a big fleet is re-read less
// often (ten times as long as the pass took, at least TTL).
type fleetCache struct {
	mu  sync.Mutex
	sum *fleetSummary
	at  time.Time
}

const fleetTTL = 3 * time.Second

func (u *UI) fleetSummary(ctx context.Context) (*fleetSummary, error) {
	u.fleet.mu.Lock()
	defer u.fleet.mu.Unlock()
	// The cache ages by the process's monotonic clock, not by Now (which
	// tests fix): it is about load, not about fleet rules.
	if s := u.fleet.sum; s != nil && time.Since(u.fleet.at) < max(fleetTTL, 10*s.Took) {
		return s, nil
	}
	start := time.Now()
	s, err := u.scanFleet(ctx, u.Now())
	if err != nil {
		return nil, err
	}
	s.Took = time.Since(start)
	u.fleet.sum, u.fleet.at = s, start
	return s, nil
}

// forgetFleet drops the cached summary after an action changed the fleet.
func (u *UI) forgetFleet() {
	u.fleet.mu.Lock()
	u.fleet.sum = nil
	u.fleet.mu.Unlock()
}

func (u *UI) scanFleet(ctx context.Context, now time.Time) (*fleetSummary, error) {
	s := &fleetSummary{At: now}
	failed, err := u.failedDevices(ctx)
	if err != nil {
		return nil, err
	}
	s.failed = failed
	versions, hardware, states := map[string]int{}, map[string]int{}, map[string]int{}
	err = u.eachDevice(ctx, koshin.DeviceFilter{}, maxFleetScan, func(d *koshin.Device) bool {
		s.Total++
		c := u.condition(d, failed, now)
		states[c]++
		if d.Status != koshin.DeviceActive {
			s.Retired++
			return true
		}
		s.Active++
		versions[deviceVersion(d)]++
		hardware[d.HardwareID]++
		if reasons := u.attentionReasons(d, failed, now); len(reasons) > 0 {
			s.AttentionTotal++
			if len(s.Attention) < maxAttentionShown {
				a := attention{Device: d, Reasons: reasons}
				if f := failed[d.ID]; f != nil {
					a.Rollout = f.RolloutID
				}
				s.Attention = append(s.Attention, a)
			}
		}
		return true
	})
	if err == errScanLimit {
		s.Truncated, err = true, nil
	}
	if err != nil {
		return nil, err
	}
	s.Versions = rows(versions, s.Active, func(l string) string { return "/ui/devices?version=" + urlQuery(l) })
	s.Hardware = rows(hardware, s.Active, func(l string) string { return "/ui/devices?hw=" + urlQuery(l) })
	for _, c := range conditions {
		if n := states[c]; n > 0 {
			s.States = append(s.States, countRow{Label: c, N: n, Of: s.Total, Class: conditionClass(c), Link: "/ui/devices?state=" + urlQuery(c)})
		}
	}
	return s, nil
}

// rows sorts counts by size, then label.
func rows(m map[string]int, of int, link func(string) string) []countRow {
	out := make([]countRow, 0, len(m))
	for _, l := range slices.Sorted(maps.Keys(m)) {
		out = append(out, countRow{Label: l, N: m[l], Of: of, Link: link(l)})
	}
	slices.SortStableFunc(out, func(a, b countRow) int { return cmp.Compare(b.N, a.N) })
	return out
}

var errScanLimit = fmt.Errorf("scan limit reached")

// eachDevice calls fn for every device matching f, page by page, until fn
// returns false; it returns errScanLimit after limit devices.
func (u *UI) eachDevice(ctx context.Context, f koshin.DeviceFilter, limit int, fn func(*koshin.Device) bool) error {
	f.Limit = koshin.MaxLimit
	n := 0
	for {
		page, err := u.Store.FindDevices(ctx, f)
		if err != nil {
			return err
		}
		for _, d := range page {
			if n == limit {
				return errScanLimit
			}
			n++
			if !fn(d) {
				return nil
			}
		}
		if len(page) < f.Limit {
			return nil
		}
		f.After = page[len(page)-1].ID
	}
}

// failedDevices finds devices whose latest assignment ended in failure
// (failed, rolled back, rejected, silent past its deadline): recent
// failures are listed per state, newest first, and each candidate's latest
// assignment is checked so that a device that failed once and then
// updated is not flagged.
func (u *UI) failedDevices(ctx context.Context) (map[string]*koshin.Assignment, error) {
	cand := map[string]*koshin.Assignment{}
	for _, st := range []koshin.AssignmentState{koshin.AssignmentFailed, koshin.AssignmentRolledBack,
		koshin.AssignmentRejected, koshin.AssignmentSilentFailed} {
		f := koshin.AssignmentFilter{State: st, Page: koshin.SeqPage{Desc: true, Limit: koshin.MaxLimit}}
		for seen := 0; seen < maxFailureScan; {
			page, err := u.Store.FindAssignments(ctx, f)
			if err != nil {
				return nil, err
			}
			for _, a := range page {
				if cur := cand[a.DeviceID]; cur == nil || a.ID > cur.ID {
					cand[a.DeviceID] = a
				}
			}
			seen += len(page)
			if len(page) < f.Page.Limit {
				break
			}
			f.Page.Cursor = page[len(page)-1].ID
		}
	}
	out := map[string]*koshin.Assignment{}
	ids := slices.Sorted(maps.Keys(cand))
	for i, id := range ids {
		if i == maxFailureLookups {
			break
		}
		latest, err := u.Store.FindAssignments(ctx, koshin.AssignmentFilter{DeviceID: id, Page: koshin.SeqPage{Desc: true, Limit: 1}})
		if err != nil {
			return nil, err
		}
		if len(latest) == 1 && latest[0].State.Failed() {
			out[id] = latest[0]
		}
	}
	return out, nil
}

// condition is the device's one state for the overview.
func (u *UI) condition(d *koshin.Device, failed map[string]*koshin.Assignment, now time.Time) string {
	switch {
	case d.Status != koshin.DeviceActive:
		return condRetired
	case integrityAlert(d):
		return condIntegrity
	case failed[d.ID] != nil:
		return condFailed
	case d.LastSeenAt.IsZero():
		return condNever
	case u.silent(d, now):
		return condSilent
	case d.Inventory.Update != nil:
		return condUpdating
	case !d.Inventory.Settings.UpdatesEnabled:
		return condDisabled
	}
	return condOK
}

// attentionReasons lists everything wrong with an active device.
func (u *UI) attentionReasons(d *koshin.Device, failed map[string]*koshin.Assignment, now time.Time) []string {
	var out []string
	if a := failed[d.ID]; a != nil {
		r := string(a.State)
		if a.Reason != "" {
			r += ": " + a.Reason
		}
		out = append(out, r)
	}
	sec := d.Inventory.Security
	if sec.BootIntegrity == koshin.BootFailed {
		out = append(out, "boot integrity check failed")
	}
	if sec.Restricted {
		out = append(out, "restricted after an unauthorised change")
	}
	if sec.FailedVerifications > 0 {
		out = append(out, strconv.Itoa(int(sec.FailedVerifications))+" failed update verifications")
	}
	if !d.LastSeenAt.IsZero() && u.silent(d, now) {
		out = append(out, "silent since "+d.LastSeenAt.UTC().Format("2006-01-02 15:04 MST"))
	}
	if !d.LastSeenAt.IsZero() && !d.Inventory.Settings.UpdatesEnabled {
		out = append(out, "updates switched off on the device")
	}
	return out
}

func integrityAlert(d *koshin.Device) bool {
	s := d.Inventory.Security
	return s.BootIntegrity == koshin.BootFailed || s.Restricted || s.FailedVerifications > 0
}

// silent reports whether d missed several of its check-ins.
func (u *UI) silent(d *koshin.Device, now time.Time) bool {
	poll := d.PollInterval
	if poll == 0 {
		poll = u.PollInterval
	}
	return !d.LastSeenAt.IsZero() && now.Sub(d.LastSeenAt) > silentPolls*poll
}

// deviceVersion labels what a device runs: the version of its one
// component, or "name version" of each.
func deviceVersion(d *koshin.Device) string {
	cs := d.Inventory.Components
	if len(cs) == 0 {
		return "unknown"
	}
	if len(cs) == 1 {
		return componentVersion(cs[0])
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Name + " " + componentVersion(c)
	}
	return strings.Join(parts, ", ")
}

func componentVersion(c koshin.Component) string {
	switch {
	case c.Version != "":
		return c.Version
	case c.Target != "":
		return c.Target
	}
	return "counter " + strconv.FormatUint(c.ReleaseCounter, 10)
}
