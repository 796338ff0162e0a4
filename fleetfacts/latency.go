package fleetfacts

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/compliance"
)

// maxLatencyReleases bounds the releases judged (compliance's own limit).
const maxLatencyReleases = 1000

// advisoryID is the form of advisory IDs that reports accept (trust's
// rule for signed advisory IDs); a release carries no others unless it was
// stored without an image repository.
var advisoryID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// patchLatency measures, for every security release with advisories
// imported since since, how long it took to reach the devices it fixes.
//
// A device is affected when the release fits its hardware and either it
// still runs the component below the release's counter, or it committed
// the release, or a later release of the component, after the import. A
// device already at or above the counter without such a commit never
// needed the release (it was produced or updated later) and is left out.
// The release is named by its first advisory ID (of the form reports
// accept), the CSAF tracking ID when it carries an advisory document.
func (fl *Fleet) patchLatency(ctx context.Context, f *compliance.FleetFacts, devs []*koshin.Device, since time.Time) error {
	all, err := fl.releases(ctx)
	if err != nil {
		return err
	}
	var security []*koshin.Release
	for _, r := range all {
		if r.Security && len(r.Advisories) > 0 && !r.Revoked && r.Channel == koshin.ChannelRelease &&
			!r.ImportedAt.Before(since) && !r.ImportedAt.After(f.ObservedAt) && len(security) < maxLatencyReleases {
			security = append(security, r)
		}
	}
	if len(security) == 0 {
		return nil
	}
	oldest := slices.MinFunc(security, func(a, b *koshin.Release) int { return a.ImportedAt.Compare(b.ImportedAt) }).ImportedAt
	commits, err := fl.commits(ctx, all, oldest)
	if err != nil {
		return err
	}
	for _, r := range security {
		if l, ok := latencyOf(r, devs, commits); ok {
			f.PatchLatency = append(f.PatchLatency, l)
		}
	}
	slices.SortFunc(f.PatchLatency, func(a, b compliance.AdvisoryLatency) int { return a.ReleasedAt.Compare(b.ReleasedAt) })
	return nil
}

func (fl *Fleet) releases(ctx context.Context) (map[string]*koshin.Release, error) {
	out := map[string]*koshin.Release{}
	filter := koshin.ReleaseFilter{IncludeRevoked: true, Limit: koshin.MaxLimit}
	for {
		page, err := fl.Store.FindReleases(ctx, filter)
		if err != nil {
			return nil, fmt.Errorf("releases: %w", err)
		}
		for _, r := range page {
			out[r.Name] = r
		}
		if len(page) < filter.Limit {
			return out, nil
		}
		filter.After = page[len(page)-1].Name
	}
}

// commit is one device committing one release.
type commit struct {
	at      time.Time
	release *koshin.Release
}

// commits lists each device's commits since since, oldest first.
func (fl *Fleet) commits(ctx context.Context, rels map[string]*koshin.Release, since time.Time) (map[string][]commit, error) {
	out := map[string][]commit{}
	err := fl.eachEvent(ctx, koshin.EventCommitted, since, func(e *koshin.Event) {
		if r := rels[e.ReleaseName]; r != nil {
			out[e.DeviceID] = append(out[e.DeviceID], commit{at: e.ReceivedAt, release: r})
		}
	})
	return out, err
}

// latencyOf measures one release; ok is false when no device needed it.
func latencyOf(r *koshin.Release, devs []*koshin.Device, commits map[string][]commit) (compliance.AdvisoryLatency, bool) {
	i := slices.IndexFunc(r.Advisories, advisoryID.MatchString)
	if i < 0 {
		return compliance.AdvisoryLatency{}, false
	}
	l := compliance.AdvisoryLatency{Advisory: r.Advisories[i], Release: r.Name, ReleasedAt: r.ImportedAt.UTC()}
	var fixedAt []time.Time
	for _, d := range devs {
		if !r.Fits(d.HardwareID) {
			continue
		}
		at, fixed := fixedSince(r, commits[d.ID])
		c, has := d.Inventory.Component(r.Component)
		switch {
		case fixed:
			fixedAt = append(fixedAt, at)
		case !has || c.ReleaseCounter >= r.ReleaseCounter:
			continue // never needed it
		}
		l.AffectedDevices++
	}
	if l.AffectedDevices == 0 {
		return l, false
	}
	slices.SortFunc(fixedAt, time.Time.Compare)
	l.HoursTo50 = hoursToShare(r.ImportedAt, fixedAt, l.AffectedDevices, 0.5)
	l.HoursTo90 = hoursToShare(r.ImportedAt, fixedAt, l.AffectedDevices, 0.9)
	return l, true
}

// fixedSince finds the device's first commit, after r's import, of r or a
// later release of its component.
func fixedSince(r *koshin.Release, cs []commit) (time.Time, bool) {
	for _, c := range cs {
		if !c.at.Before(r.ImportedAt) && c.release.Component == r.Component && c.release.ReleaseCounter >= r.ReleaseCounter {
			return c.at, true
		}
	}
	return time.Time{}, false
}

// hoursToShare is the time from start until share of n devices were fixed
// (fixedAt sorted), or nil while fewer were.
func hoursToShare(start time.Time, fixedAt []time.Time, n int, share float64) *float64 {
	need := int(math.Ceil(share * float64(n)))
	if need < 1 || len(fixedAt) < need {
		return nil
	}
	h := math.Round(fixedAt[need-1].Sub(start).Hours()*10) / 10
	return &h
}
