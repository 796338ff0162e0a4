package anomaly

import (
	"context"
	"time"

	"github.com/koshin-ota/koshin"
)

// Store is what the detector reads and writes; koshin.Store implements it.
type Store interface {
	AuditReader
	FindEvents(ctx context.Context, f koshin.EventFilter) ([]*koshin.Event, error)
	FindFleetReports(ctx context.Context, p koshin.SeqPage) ([]*koshin.DeviceReport, error)
	FindDeviceReports(ctx context.Context, id string, p koshin.SeqPage) ([]*koshin.DeviceReport, error)
	FindDeviceByID(ctx context.Context, id string) (*koshin.Device, error)
	FindReleases(ctx context.Context, f koshin.ReleaseFilter) ([]*koshin.Release, error)
	AppendAudit(ctx context.Context, e *koshin.AuditEntry) error
}

// maxPerTick bounds the rows one tick reads from one feed; a backlog is
// read over the following ticks.
const maxPerTick = 50 * koshin.MaxLimit

// feed follows an append-only sequence (events of one type, the report
// feed). Under concurrent writers a row can become visible after a row
// with a higher sequence number, so each tick reads again from where the
// previous tick started and skips what it has seen.
type feed struct {
	behind int64              // each tick reads rows above this
	cursor int64              // highest sequence number counted
	start  int64              // cursor when the tick began
	seen   map[int64]struct{} // counted sequence numbers above behind
	warm   bool               // the first tick has read the history
}

// begin starts a tick and returns where to read from.
func (f *feed) begin() int64 {
	f.start = f.cursor
	return f.behind
}

// next returns whether seq is new, and records it.
func (f *feed) next(seq int64) bool {
	if seq <= f.behind {
		return false
	}
	if _, ok := f.seen[seq]; ok {
		return false
	}
	if f.seen == nil {
		f.seen = map[int64]struct{}{}
	}
	f.seen[seq] = struct{}{}
	f.cursor = max(f.cursor, seq)
	return true
}

// end finishes a tick: the next one reads again from where this one began
// (after the first, which read history that is long settled).
func (f *feed) end() {
	if !f.warm {
		f.warm, f.start = true, f.cursor
	}
	f.behind = max(f.behind, f.start)
	for seq := range f.seen {
		if seq <= f.behind {
			delete(f.seen, seq)
		}
	}
}

// device is what an observation needs to know about its device.
type device struct{ hardware, group string }

// scopes lists where an observation about d counts.
func (d device) scopes() []Scope {
	out := []Scope{{Kind: ScopeFleet}}
	if d.hardware != "" {
		out = append(out, Scope{Kind: ScopeHardware, Value: d.hardware})
	}
	if d.group != "" {
		out = append(out, Scope{Kind: ScopeGroup, Value: d.group})
	}
	return out
}

// maxCachedDevices bounds the device cache; it is emptied when full.
const maxCachedDevices = 100_000

func (d *Detector) lookup(ctx context.Context, id string) (device, error) {
	if dv, ok := d.devices[id]; ok {
		return dv, nil
	}
	dev, err := d.Store.FindDeviceByID(ctx, id)
	if koshin.ErrorCode(err) == koshin.ENOTFOUND {
		return device{}, nil // counted for the fleet only
	} else if err != nil {
		return device{}, err
	}
	if len(d.devices) >= maxCachedDevices {
		clear(d.devices)
	}
	dv := device{hardware: dev.HardwareID, group: dev.Group}
	d.devices[id] = dv
	return dv, nil
}

// eventSignals are the event types counted, and their signals.
var eventSignals = map[koshin.EventType]Signal{
	koshin.EventRejected: SignalRejected,
	koshin.EventLockout:  SignalLockouts,
}

// pollEvents counts new events of type t. The first poll reads back over
// the whole baseline, so a restarted detector (or one that took over on
// another replica) judges against the same history.
func (d *Detector) pollEvents(ctx context.Context, t koshin.EventType, now time.Time) error {
	f := d.eventFeeds[t]
	filter := koshin.EventFilter{Type: t, Page: koshin.SeqPage{Cursor: f.begin(), Limit: koshin.MaxLimit}}
	if !f.warm {
		filter.Since = now.Add(-d.Config.span())
	}
	for counted := 0; counted < maxPerTick; {
		page, err := d.Store.FindEvents(ctx, filter)
		if err != nil {
			return err
		}
		for _, e := range page {
			if !f.next(e.Seq) {
				continue
			}
			counted++
			dv, err := d.lookup(ctx, e.DeviceID)
			if err != nil {
				return err
			}
			d.observe(eventSignals[t], dv.scopes(), e.ReceivedAt, 1)
		}
		if len(page) < filter.Page.Limit {
			break
		}
		filter.Page.Cursor = page[len(page)-1].Seq
	}
	f.end()
	return nil
}

// pollReports counts reports that newly show an unknown version: a
// component no imported release explains, which the device's previous
// report did not show.
func (d *Detector) pollReports(ctx context.Context, now time.Time) error {
	f := &d.reportFeed
	if !f.warm {
		if err := d.warmReports(ctx, now); err != nil {
			return err
		}
	}
	rel, err := d.releaseIndex(ctx)
	if err != nil {
		return err
	}
	page := koshin.SeqPage{Cursor: f.begin(), Limit: koshin.MaxLimit}
	for counted := 0; counted < maxPerTick; {
		reports, err := d.Store.FindFleetReports(ctx, page)
		if err != nil {
			return err
		}
		for _, r := range reports {
			if !f.next(r.Seq) {
				continue
			}
			counted++
			if err := d.judgeReport(ctx, rel, r); err != nil {
				return err
			}
		}
		if len(reports) < page.Limit {
			break
		}
		page.Cursor = reports[len(reports)-1].Seq
	}
	f.end()
	return nil
}

// warmReports places the report feed before the reports of the last
// baseline span. The feed has no time filter, so it walks back from the
// newest report, at most maxPerTick of them.
func (d *Detector) warmReports(ctx context.Context, now time.Time) error {
	f := &d.reportFeed
	oldest := now.Add(-d.Config.span())
	page := koshin.SeqPage{Desc: true, Limit: koshin.MaxLimit}
	for read := 0; read < maxPerTick; {
		reports, err := d.Store.FindFleetReports(ctx, page)
		if err != nil {
			return err
		}
		for _, r := range reports {
			if r.ReceivedAt.Before(oldest) {
				f.behind, f.cursor = r.Seq, r.Seq
				return nil
			}
			f.behind, f.cursor = r.Seq-1, r.Seq-1
		}
		read += len(reports)
		if len(reports) < page.Limit {
			return nil
		}
		page.Cursor = reports[len(reports)-1].Seq
	}
	return nil
}

func (d *Detector) judgeReport(ctx context.Context, rel releaseIndex, r *koshin.DeviceReport) error {
	dv, err := d.lookup(ctx, r.DeviceID)
	if err != nil {
		return err
	}
	unknown := rel.unknown(r.Inventory, dv.hardware)
	if len(unknown) == 0 {
		return nil
	}
	prev, err := d.Store.FindDeviceReports(ctx, r.DeviceID, koshin.SeqPage{Cursor: r.Seq, Desc: true, Limit: 1})
	if err != nil {
		return err
	}
	if len(prev) == 1 && sameSet(rel.unknown(prev[0].Inventory, dv.hardware), unknown) {
		return nil // still the version it reported before
	}
	d.observe(SignalUnknownVersions, dv.scopes(), r.ReceivedAt, 1)
	return nil
}

// releaseIndex is what the imported releases explain.
type releaseIndex struct {
	byName    map[string]*koshin.Release
	byCounter map[string]map[uint64][]*koshin.Release // component → counter → releases
}

func (d *Detector) releaseIndex(ctx context.Context) (releaseIndex, error) {
	idx := releaseIndex{byName: map[string]*koshin.Release{}, byCounter: map[string]map[uint64][]*koshin.Release{}}
	f := koshin.ReleaseFilter{IncludeRevoked: true, Limit: koshin.MaxLimit}
	for {
		page, err := d.Store.FindReleases(ctx, f)
		if err != nil {
			return idx, err
		}
		for _, r := range page {
			idx.byName[r.Name] = r
			if idx.byCounter[r.Component] == nil {
				idx.byCounter[r.Component] = map[uint64][]*koshin.Release{}
			}
			idx.byCounter[r.Component][r.ReleaseCounter] = append(idx.byCounter[r.Component][r.ReleaseCounter], r)
		}
		if len(page) < f.Limit {
			return idx, nil
		}
		f.After = page[len(page)-1].Name
	}
}

// unknown lists the components of inv that no release for hardware hw
// explains. A component naming its release (Target) must match that
// release's component and counter; one without a target must match some
// release by component and counter. A component with neither a target nor
// a counter is a factory image outside any release and is not judged.
func (idx releaseIndex) unknown(inv koshin.Inventory, hw string) []string {
	var out []string
	for _, c := range inv.Components {
		var ok bool
		switch {
		case c.Target != "":
			r := idx.byName[c.Target]
			ok = r != nil && r.Component == c.Name && r.ReleaseCounter == c.ReleaseCounter && r.Fits(hw)
		case c.ReleaseCounter == 0:
			ok = true
		default:
			for _, r := range idx.byCounter[c.Name][c.ReleaseCounter] {
				ok = ok || r.Fits(hw)
			}
		}
		if !ok {
			out = append(out, c.Name+"@"+c.Version)
		}
	}
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		if seen[s]--; seen[s] < 0 {
			return false
		}
	}
	return true
}

// pollThrottled counts device requests refused since the previous tick.
func (d *Detector) pollThrottled(now time.Time) {
	if d.Throttled == nil {
		return
	}
	n := d.Throttled()
	if d.throttledSeen && n >= d.throttledLast {
		d.observe(SignalRetryStorm, []Scope{{Kind: ScopeFleet}}, now, int(min(n-d.throttledLast, 1<<30)))
	}
	d.throttledLast, d.throttledSeen = n, true
}
