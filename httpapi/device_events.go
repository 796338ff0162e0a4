package httpapi

import (
	"net/http"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/deviceapi"
)

// events stores a device's update and security events (CCDS UPD09) and
// moves its assignment through the rollout service. Events carry the
// device's own IDs, so a batch re-sent after a lost answer is stored once;
// the answer acknowledges the whole batch either way.
func (s *Server) events(w http.ResponseWriter, r *http.Request, d *koshin.Device) error {
	var b deviceapi.EventBatch
	if err := decodeJSON(w, r, &b, deviceapi.MaxRequestBody); err != nil {
		return err
	}
	evs, err := domainEvents(&b)
	if err != nil {
		return err
	}
	if _, err := s.Rollouts.RecordEvents(r.Context(), d.ID, evs); err != nil {
		return err
	}
	for _, e := range evs {
		s.Metrics.events.WithLabelValues(string(e.Type)).Inc()
	}
	writeJSON(w, http.StatusOK, deviceapi.EventsResponse{Accepted: len(evs)})
	return nil
}

// domainEvents validates the wire batch and converts it; the rollout
// service sets the device ID from the certificate, never from the body.
func domainEvents(b *deviceapi.EventBatch) ([]koshin.Event, error) {
	if err := b.Validate(); err != nil {
		return nil, koshin.Errorf(koshin.EINVALID, "Events: %v.", err)
	}
	evs := make([]koshin.Event, len(b.Events))
	for i, e := range b.Events {
		evs[i] = koshin.Event{
			EventID: e.ID, Type: koshin.EventType(e.Type), ReleaseName: e.Target,
			Reason: e.Reason, Detail: e.Detail, DeviceTime: e.Time,
		}
	}
	return evs, nil
}
