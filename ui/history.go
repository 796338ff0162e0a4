package ui

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/koshin-ota/koshin"
)

// Versions over time are rebuilt from what devices reported: a device that
// committed an update in the window has its report history read back to
// the window's start (the history grows only when a report differs); the
// others ran their current version all along. The chart samples the fleet
// at the end of each bucket.
const (
	historyWindow      = 30 * 24 * time.Hour
	minHistoryWindow   = time.Hour
	historyBuckets     = 36
	maxHistoryEvents   = 50 * koshin.MaxLimit
	maxHistoryLookups  = 2000
	maxHistoryReports  = 5 * koshin.MaxLimit / 10 // per device
	maxHistorySeries   = 8                        // more versions are drawn as "other"
	historyTTL         = 30 * time.Second
	otherVersionsLabel = "other versions"
)

// versionHistory is the chart's data.
type versionHistory struct {
	At      time.Time
	Took    time.Duration
	Start   time.Time
	Times   []time.Time // bucket ends
	Series  []series
	Max     int
	Approx  bool // some devices' history was not read
	Devices int
}

type series struct {
	Label  string
	Counts []int
}

type historyCache struct {
	mu sync.Mutex
	h  *versionHistory
	at time.Time
}

func (u *UI) versionHistory(ctx context.Context) (*versionHistory, error) {
	u.history.mu.Lock()
	defer u.history.mu.Unlock()
	now := u.Now()
	// Fresh by the process's clock, and drawn for about the same Now.
	if h := u.history.h; h != nil && time.Since(u.history.at) < max(historyTTL, 20*h.Took) &&
		!now.Before(h.At) && now.Sub(h.At) < historyTTL {
		return h, nil
	}
	start := time.Now()
	h, err := u.buildHistory(ctx, now)
	if err != nil {
		return nil, err
	}
	h.Took = time.Since(start)
	u.history.h, u.history.at = h, start
	return h, nil
}

// span is one stretch of a device's life on one version.
type span struct {
	from, to time.Time // to is zero while it lasts
	label    string
}

func (u *UI) buildHistory(ctx context.Context, now time.Time) (*versionHistory, error) {
	var devs []*koshin.Device
	first := now
	err := u.eachDevice(ctx, koshin.DeviceFilter{}, maxFleetScan, func(d *koshin.Device) bool {
		devs = append(devs, d)
		if d.EnrolledAt.Before(first) {
			first = d.EnrolledAt
		}
		return true
	})
	h := &versionHistory{At: now, Approx: err == errScanLimit, Devices: len(devs)}
	if err != nil && err != errScanLimit {
		return nil, err
	}
	h.Start = first.Add(-time.Minute)
	if w := now.Add(-historyWindow); h.Start.Before(w) {
		h.Start = w
	}
	if now.Sub(h.Start) < minHistoryWindow {
		h.Start = now.Add(-minHistoryWindow)
	}
	changed, approx, err := u.changedDevices(ctx, h.Start)
	if err != nil {
		return nil, err
	}
	h.Approx = h.Approx || approx
	step := now.Sub(h.Start) / historyBuckets
	for i := 1; i <= historyBuckets; i++ {
		h.Times = append(h.Times, h.Start.Add(time.Duration(i)*step))
	}
	counts := map[string][]int{}
	lookups := 0
	for _, d := range devs {
		spans := []span{{from: d.EnrolledAt, label: deviceVersion(d)}}
		if changed[d.ID] && lookups < maxHistoryLookups {
			lookups++
			if s, err := u.deviceSpans(ctx, d, h.Start); err != nil {
				return nil, err
			} else if len(s) > 0 {
				spans = s
			}
		} else if changed[d.ID] {
			h.Approx = true
		}
		end := time.Time{}
		if d.Status != koshin.DeviceActive {
			end = d.DecommissionedAt
		}
		for i, t := range h.Times {
			if !end.IsZero() && !t.Before(end) {
				break
			}
			if l, ok := labelAt(spans, t); ok {
				if counts[l] == nil {
					counts[l] = make([]int, len(h.Times))
				}
				counts[l][i]++
			}
		}
	}
	h.Series = topSeries(counts, len(h.Times))
	for i := range h.Times {
		total := 0
		for _, s := range h.Series {
			total += s.Counts[i]
		}
		h.Max = max(h.Max, total)
	}
	return h, nil
}

// changedDevices lists devices with a committed update since start.
func (u *UI) changedDevices(ctx context.Context, start time.Time) (map[string]bool, bool, error) {
	out := map[string]bool{}
	f := koshin.EventFilter{Type: koshin.EventCommitted, Since: start, Page: koshin.SeqPage{Limit: koshin.MaxLimit}}
	for seen := 0; ; {
		page, err := u.Store.FindEvents(ctx, f)
		if err != nil {
			return nil, false, err
		}
		for _, e := range page {
			out[e.DeviceID] = true
		}
		seen += len(page)
		if len(page) < f.Page.Limit {
			return out, false, nil
		}
		if seen >= maxHistoryEvents {
			return out, true, nil
		}
		f.Page.Cursor = page[len(page)-1].Seq
	}
}

// deviceSpans reads a device's report history back to before start.
func (u *UI) deviceSpans(ctx context.Context, d *koshin.Device, start time.Time) ([]span, error) {
	var reps []*koshin.DeviceReport
	p := koshin.SeqPage{Desc: true, Limit: 100}
	for len(reps) < maxHistoryReports {
		page, err := u.Store.FindDeviceReports(ctx, d.ID, p)
		if err != nil {
			return nil, err
		}
		reps = append(reps, page...)
		if len(page) < p.Limit || page[len(page)-1].ReceivedAt.Before(start) {
			break
		}
		p.Cursor = page[len(page)-1].Seq
	}
	slices.Reverse(reps) // oldest first
	var out []span
	for _, r := range reps {
		l := deviceVersion(&koshin.Device{Inventory: r.Inventory})
		if n := len(out); n > 0 && out[n-1].label == l {
			continue
		}
		if n := len(out); n > 0 {
			out[n-1].to = r.ReceivedAt
		}
		out = append(out, span{from: r.ReceivedAt, label: l})
	}
	return out, nil
}

func labelAt(spans []span, t time.Time) (string, bool) {
	i := sort.Search(len(spans), func(i int) bool { return spans[i].from.After(t) }) - 1
	if i < 0 {
		return "", false
	}
	return spans[i].label, true
}

// topSeries keeps the versions most devices ran at the end, folding the
// rest into "other versions".
func topSeries(counts map[string][]int, n int) []series {
	labels := slices.Sorted(maps.Keys(counts))
	slices.SortStableFunc(labels, func(a, b string) int {
		return cmp.Or(cmp.Compare(counts[b][n-1], counts[a][n-1]), cmp.Compare(sum(counts[b]), sum(counts[a])))
	})
	var out []series
	var other []int
	for i, l := range labels {
		if i < maxHistorySeries-1 || len(labels) == maxHistorySeries {
			out = append(out, series{Label: l, Counts: counts[l]})
			continue
		}
		if other == nil {
			other = make([]int, n)
		}
		for j, c := range counts[l] {
			other[j] += c
		}
	}
	if other != nil {
		out = append(out, series{Label: otherVersionsLabel, Counts: other})
	}
	return out
}

func sum(xs []int) int {
	t := 0
	for _, x := range xs {
		t += x
	}
	return t
}
