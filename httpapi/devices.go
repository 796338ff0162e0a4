package httpapi

import (
	"net/http"
	"time"

	"github.com/koshin-ota/koshin"
)

// listDevices searches the registry (CCDS STS03): q is the search-box
// syntax of koshin.ParseDeviceQuery ("group:plant-7 tag:region=eu"), after
// and limit page through the result in device-ID order.
func (s *Server) listDevices(w http.ResponseWriter, r *http.Request, _ *principal) error {
	q := newQuery(r)
	f, err := koshin.ParseDeviceQuery(q.str("q"))
	if err != nil {
		return err
	}
	f.After, f.Limit = q.str("after"), q.int("limit")
	if q.err != nil {
		return q.err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	ds, err := s.Store.FindDevices(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, keyList(ds, f.Limit, func(d *koshin.Device) string { return d.ID }))
	return nil
}

func (s *Server) findDevice(r *http.Request) (*koshin.Device, error) {
	return s.Store.FindDeviceByID(r.Context(), r.PathValue("id"))
}

func (s *Server) getDevice(w http.ResponseWriter, r *http.Request, _ *principal) error {
	d, err := s.findDevice(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// deviceInventory is the device's last report: installed components,
// slots, agent settings and security state (CCDS SSS01, SSS06), readable
// only by authenticated roles (SSS03).
func (s *Server) deviceInventory(w http.ResponseWriter, r *http.Request, _ *principal) error {
	d, err := s.findDevice(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"device_id": d.ID, "last_seen_at": d.LastSeenAt, "inventory": d.Inventory})
	return nil
}

// deviceHistory pages through the device's report history (CCDS UPD09).
func (s *Server) deviceHistory(w http.ResponseWriter, r *http.Request, _ *principal) error {
	q := newQuery(r)
	p := q.seqPage()
	if q.err != nil {
		return q.err
	}
	reps, err := s.Store.FindDeviceReports(r.Context(), r.PathValue("id"), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, seqList(reps, p.Limit, func(d *koshin.DeviceReport) int64 { return d.Seq }))
	return nil
}

func (s *Server) deviceAssignments(w http.ResponseWriter, r *http.Request, _ *principal) error {
	q := newQuery(r)
	f := koshin.AssignmentFilter{DeviceID: r.PathValue("id"), Page: q.seqPage()}
	if q.err != nil {
		return q.err
	}
	return s.writeAssignments(w, r, f)
}

func (s *Server) writeAssignments(w http.ResponseWriter, r *http.Request, f koshin.AssignmentFilter) error {
	if err := f.Validate(); err != nil {
		return err
	}
	as, err := s.Store.FindAssignments(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, seqList(as, f.Page.Limit, func(a *koshin.Assignment) int64 { return a.ID }))
	return nil
}

// devicePatch is what an operator may change on a device; certificate
// fields are the server's alone.
type devicePatch struct {
	Group        *string        `json:"group,omitempty"`
	Tags         *[]string      `json:"tags,omitempty"`
	PollInterval *time.Duration `json:"poll_interval,omitempty"` // nanoseconds; 0 = server default
}

func (s *Server) updateDevice(w http.ResponseWriter, r *http.Request, p *principal) error {
	var req devicePatch
	if err := decodeJSON(w, r, &req, maxJSONBody); err != nil {
		return err
	}
	id := r.PathValue("id")
	d, err := s.Store.UpdateDevice(r.Context(), id, koshin.DeviceUpdate{Group: req.Group, Tags: req.Tags, PollInterval: req.PollInterval})
	s.audit(r.Context(), p.String(), "device.update", "device:"+id, err, describeDevicePatch(req))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

func describeDevicePatch(p devicePatch) string {
	d := ""
	if p.Group != nil {
		d += "group " + clip(*p.Group, koshin.MaxIDLen) + "; "
	}
	if p.Tags != nil {
		d += "tags set; "
	}
	if p.PollInterval != nil {
		d += "poll interval " + p.PollInterval.String() + "; "
	}
	return d
}

// decommission retires a device (CCDS HLC07): its certificate stops
// working at its next request, its active assignment is cancelled, and
// its record and history stay for the audit trail.
func (s *Server) decommission(w http.ResponseWriter, r *http.Request, p *principal) error {
	id := r.PathValue("id")
	d, err := s.Store.DecommissionDevice(r.Context(), id, s.now())
	s.audit(r.Context(), p.String(), "device.decommission", "device:"+id, err, "")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}
