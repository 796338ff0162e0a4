package ui

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/compliance"
)

type complianceData struct {
	Configured bool
	Path       string
	Reports    []complianceRow
	Error      string
}

type complianceRow struct {
	Standard compliance.Standard
	Title    string
	Summary  compliance.Summary
	Error    string
}

// compliancePage summarises the conformance statements for the configured
// product profile (EN 303 645 5.12-2, 5.12-3: guidance on a secure setup
// and on checking it), or explains how to configure one.
func (u *UI) compliancePage(w http.ResponseWriter, r *http.Request, s *session) error {
	d := &complianceData{Configured: u.Compliance != nil}
	if d.Configured {
		d.Path = u.Compliance.Path
		for _, std := range compliance.Standards {
			row := complianceRow{Standard: std}
			m, err := u.complianceModel(r.Context(), std)
			if err != nil {
				row.Error = err.Error()
			} else {
				row.Title, row.Summary = m.Title, m.Summary
			}
			d.Reports = append(d.Reports, row)
		}
	}
	u.render(w, r, http.StatusOK, "compliance", &view{Title: "Compliance", Nav: "compliance", S: s, Data: d})
	return nil
}

// complianceReport serves one statement as its own document (HTML, or
// Markdown and JSON to download).
func (u *UI) complianceReport(w http.ResponseWriter, r *http.Request, s *session) error {
	if u.Compliance == nil {
		return &apiError{Status: http.StatusNotFound, Message: "No product profile is configured."}
	}
	std := compliance.Standard(r.PathValue("standard"))
	if !slices.Contains(compliance.Standards, std) {
		return &apiError{Status: http.StatusNotFound, Message: "There is no such standard."}
	}
	format := compliance.FormatHTML
	if q := r.URL.Query().Get("format"); q != "" {
		var err error
		if format, err = compliance.ParseFormat(q); err != nil {
			return &apiError{Status: http.StatusBadRequest, Message: "Format must be html, md or json."}
		}
	}
	m, err := u.complianceModel(r.Context(), std)
	if err != nil {
		return &apiError{Status: http.StatusInternalServerError, Message: "The report could not be computed: " + err.Error()}
	}
	var buf bytes.Buffer
	if err := compliance.Render(&buf, m, format); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	switch format {
	case compliance.FormatHTML:
		// The report is a document of its own with an inline stylesheet
		// and no script.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		h.Set("Content-Type", "text/html; charset=utf-8")
	case compliance.FormatMarkdown:
		h.Set("Content-Type", "text/markdown; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="koshin-`+string(std)+`.md"`)
	default:
		h.Set("Content-Type", "application/json")
		h.Set("Content-Disposition", `attachment; filename="koshin-`+string(std)+`.json"`)
	}
	w.Write(buf.Bytes())
	return nil
}

func (u *UI) complianceModel(ctx context.Context, std compliance.Standard) (*compliance.Model, error) {
	var fleet compliance.Fleet = &storeFleet{u: u}
	if u.Compliance.Fleet != nil {
		fleet = u.Compliance.Fleet
	}
	return compliance.Report(ctx, std, u.Compliance.Profile, fleet, nil,
		compliance.Options{Now: u.Now(), Edition: u.Compliance.Edition, Generator: u.Version})
}

// factsWindow is the span of events the fleet facts count.
const factsWindow = 30

// storeFleet observes the fleet from the store for the compliance report.
// It reports what the registry and the event log show; facts the server
// does not measure (credential changes, patch latency, anomaly alerts,
// listening ports) are left as unknown or zero, and the report says which
// rows lack evidence.
type storeFleet struct{ u *UI }

func (sf *storeFleet) Facts(ctx context.Context) (*compliance.FleetFacts, error) {
	u := sf.u
	now := u.Now()
	f := &compliance.FleetFacts{ObservedAt: now, WindowDays: factsWindow}
	var polls []int64
	err := u.eachDevice(ctx, koshin.DeviceFilter{Status: koshin.DeviceActive}, maxFleetScan, func(d *koshin.Device) bool {
		f.AddDevice(d.Inventory)
		poll := d.PollInterval
		if poll == 0 {
			poll = u.PollInterval
		}
		polls = append(polls, int64(poll/time.Second))
		return true
	})
	if err != nil && err != errScanLimit {
		return nil, err
	}
	f.DistinctIdentities = f.Devices // a device ID is the hash of its own public key
	f.PollInterval = compliance.DistributionOf(polls)
	if u.PollJitter > 0 && len(polls) > 0 {
		j := int64(u.PollJitter / time.Second)
		f.PollJitter = compliance.Distribution{Samples: len(polls), Min: j, P50: j, P90: j, Max: j}
	}
	since := now.AddDate(0, 0, -factsWindow)
	counts, err := u.Store.CountEventsByType(ctx, since)
	if err != nil {
		return nil, err
	}
	f.SignatureRejections, f.Rollbacks = counts[koshin.EventRejected], counts[koshin.EventRolledBack]
	f.Lockouts, f.TamperAlerts, f.FactoryResets = counts[koshin.EventLockout], counts[koshin.EventTamper], counts[koshin.EventFactoryReset]
	if f.RejectingDevices, err = u.rejectingDevices(ctx, since); err != nil {
		return nil, err
	}
	f.RejectingDevices = min(f.RejectingDevices, f.Devices)
	f.RestrictedDevices = min(f.RestrictedDevices, f.Devices)
	return f, nil
}

// rejectingDevices counts devices that refused an invalid update.
func (u *UI) rejectingDevices(ctx context.Context, since time.Time) (int, error) {
	seen := map[string]bool{}
	f := koshin.EventFilter{Type: koshin.EventRejected, Since: since, Page: koshin.SeqPage{Limit: koshin.MaxLimit}}
	for n := 0; n < maxHistoryEvents; {
		page, err := u.Store.FindEvents(ctx, f)
		if err != nil {
			return 0, err
		}
		for _, e := range page {
			seen[e.DeviceID] = true
		}
		n += len(page)
		if len(page) < f.Page.Limit {
			break
		}
		f.Page.Cursor = page[len(page)-1].Seq
	}
	return len(seen), nil
}
