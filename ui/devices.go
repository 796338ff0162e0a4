package ui

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/koshin-ota/koshin"
)

const (
	devicesPerPage = 100
	// maxFilterScan bounds how many devices one page of a version or state
	// search reads (those filters are applied while reading).
	maxFilterScan = 20 * koshin.MaxLimit
)

// deviceSearch is the device list's form: a query in the search-box syntax
// of koshin.ParseDeviceQuery plus fields that add terms to it, and the
// version and state filters applied while reading.
type deviceSearch struct {
	Q, HW, Tag, Seen, Version, State, After string
}

// seenOptions are the "last seen" choices: not seen for at least this long.
var seenOptions = []struct{ Value, Label string }{
	{"", "any time"}, {"1h", "not in the last hour"}, {"24h", "not in the last day"},
	{"168h", "not in the last week"}, {"720h", "not in the last 30 days"},
}

type devicesData struct {
	Search    deviceSearch
	Query     string // the effective query
	Error     string
	Devices   []deviceRow
	Next      string
	Scanned   int
	Truncated bool
	Hardware  []countRow
	Versions  []countRow
	States    []string
	Seen      []struct{ Value, Label string }
}

type deviceRow struct {
	D         *koshin.Device
	Version   string
	Condition string
}

// devices searches the registry (CCDS STS03).
func (u *UI) devices(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.URL.Query()
	d := &devicesData{Search: deviceSearch{Q: q.Get("q"), HW: q.Get("hw"), Tag: q.Get("tag"), Seen: q.Get("seen"),
		Version: q.Get("version"), State: q.Get("state"), After: q.Get("after")}, States: conditions, Seen: seenOptions}
	fs, err := u.fleetSummary(r.Context())
	if err != nil {
		return err
	}
	d.Hardware, d.Versions = fs.Hardware, fs.Versions
	status := http.StatusOK
	if err := u.searchDevices(r.Context(), d, fs); err != nil {
		if koshin.ErrorCode(err) != koshin.EINVALID {
			return err
		}
		d.Error, status = koshin.ErrorMessage(err), formRefused
	}
	u.render(w, r, status, "devices", &view{Title: "Devices", Nav: "devices", S: s, Data: d})
	return nil
}

// query combines the form's fields into one ParseDeviceQuery query.
func (ds *deviceSearch) query(now time.Time) (string, error) {
	terms := []string{strings.TrimSpace(ds.Q)}
	if ds.HW != "" {
		terms = append(terms, "hw:"+ds.HW)
	}
	if ds.Tag != "" {
		terms = append(terms, "tag:"+ds.Tag)
	}
	if ds.Seen != "" {
		d, err := time.ParseDuration(ds.Seen)
		if err != nil || d <= 0 {
			return "", koshin.Errorf(koshin.EINVALID, "Last seen must be one of the offered choices.")
		}
		terms = append(terms, "seen-before:"+now.Add(-d).UTC().Format(time.RFC3339))
	}
	return strings.TrimSpace(strings.Join(terms, " ")), nil
}

func (u *UI) searchDevices(ctx context.Context, d *devicesData, fs *fleetSummary) error {
	now := u.Now()
	q, err := d.Search.query(now)
	if err != nil {
		return err
	}
	d.Query = q
	f, err := koshin.ParseDeviceQuery(q)
	if err != nil {
		return err
	}
	if d.Search.State != "" && !slices.Contains(conditions, d.Search.State) {
		return koshin.Errorf(koshin.EINVALID, "Unknown state %q.", d.Search.State)
	}
	f.After = d.Search.After
	if err := f.Validate(); err != nil {
		return err
	}
	err = u.eachDevice(ctx, f, maxFilterScan, func(dev *koshin.Device) bool {
		d.Scanned++
		row := deviceRow{D: dev, Version: deviceVersion(dev), Condition: u.condition(dev, fs.failed, now)}
		if d.Search.Version != "" && row.Version != d.Search.Version || d.Search.State != "" && row.Condition != d.Search.State {
			return true
		}
		d.Devices = append(d.Devices, row)
		if len(d.Devices) == devicesPerPage {
			d.Next = dev.ID
			return false
		}
		return true
	})
	if err == errScanLimit {
		d.Truncated, err = true, nil
	}
	return err
}

type deviceData struct {
	D           *koshin.Device
	Version     string
	Condition   string
	Reasons     []string
	Assignments []*koshin.Assignment
	Awaiting    *koshin.Assignment
	Reports     []*koshin.DeviceReport
	Events      []*koshin.Event
	PollDefault bool
	Poll        time.Duration
}

// device shows one device: identity, inventory, security state and
// settings as the device reported them (CCDS SSS01–SSS03, SSS06), its
// assignments, report history and events (UPD09).
func (u *UI) device(w http.ResponseWriter, r *http.Request, s *session) error {
	ctx := r.Context()
	dev, err := u.Store.FindDeviceByID(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	fs, err := u.fleetSummary(ctx)
	if err != nil {
		return err
	}
	now := u.Now()
	d := &deviceData{D: dev, Version: deviceVersion(dev), Condition: u.condition(dev, fs.failed, now),
		Reasons: u.attentionReasons(dev, fs.failed, now), Poll: dev.PollInterval, PollDefault: dev.PollInterval == 0}
	if d.PollDefault {
		d.Poll = u.PollInterval
	}
	if d.Assignments, err = u.Store.FindAssignments(ctx, koshin.AssignmentFilter{DeviceID: dev.ID, Page: koshin.SeqPage{Desc: true, Limit: 50}}); err != nil {
		return err
	}
	for _, a := range d.Assignments {
		if a.State == koshin.AssignmentAwaitingApproval {
			d.Awaiting = a
		}
	}
	if d.Reports, err = u.Store.FindDeviceReports(ctx, dev.ID, koshin.SeqPage{Desc: true, Limit: 20}); err != nil {
		return err
	}
	if d.Events, err = u.Store.FindEvents(ctx, koshin.EventFilter{DeviceID: dev.ID, Page: koshin.SeqPage{Desc: true, Limit: 50}}); err != nil {
		return err
	}
	u.render(w, r, http.StatusOK, "device", &view{Title: "Device " + dev.Serial, Nav: "devices", S: s, Data: d})
	return nil
}

func deviceURL(id string) string { return "/ui/devices/" + urlQuery(id) }

// updateDevice changes the operator-managed group and tags.
func (u *UI) updateDevice(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	group := strings.TrimSpace(r.PostForm.Get("group"))
	tags := strings.FieldsFunc(r.PostForm.Get("tags"), func(c rune) bool { return c == ',' || c == ' ' || c == '\n' })
	body := map[string]any{"group": group, "tags": tags}
	return u.act(w, r, s, deviceURL(id), "PATCH", "/api/v1/devices/"+urlQuery(id), body, "Device updated.")
}

// decommission retires the device (CCDS HLC07).
func (u *UI) decommission(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	if r.PostForm.Get("confirm") != "yes" {
		flash(w, "!Tick the confirmation box to decommission the device.")
		http.Redirect(w, r, deviceURL(id), http.StatusSeeOther)
		return nil
	}
	return u.act(w, r, s, deviceURL(id), "POST", "/api/v1/devices/"+urlQuery(id)+"/decommission", nil, "Device decommissioned: its certificate no longer works.")
}

// approveDevice approves the device's waiting assignment (the industrial
// flow's per-device approval).
func (u *UI) approveDevice(w http.ResponseWriter, r *http.Request, s *session) error {
	id := r.PathValue("id")
	rollout := r.PostForm.Get("rollout")
	if !digits(rollout) {
		return &apiError{Status: http.StatusBadRequest, Message: "The approval names no rollout."}
	}
	return u.act(w, r, s, deviceURL(id), "POST", "/api/v1/rollouts/"+rollout+"/approvals",
		map[string]any{"device_ids": []string{id}}, "Update approved for this device.")
}

// act carries out a form's action through the management API and returns
// to back with its result. A refusal for lack of rights is a 403 page (the
// route table decided); other refusals return with the API's message.
func (u *UI) act(w http.ResponseWriter, r *http.Request, s *session, back, method, path string, body any, ok string) error {
	err := u.call(r, s.token, method, path, body, nil)
	if ae, isAPI := err.(*apiError); isAPI && ae.Status != http.StatusForbidden && ae.Status != http.StatusUnauthorized && ae.Status != http.StatusTooManyRequests {
		flash(w, "!"+ae.Message)
	} else if err != nil {
		return err
	} else {
		u.forgetFleet()
		flash(w, ok)
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
	return nil
}

func digits(s string) bool {
	if s == "" || len(s) > 18 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
