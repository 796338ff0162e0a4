package control

import (
	"net/http"
	"time"

	"github.com/koshin-ota/koshin/deviceapi"
)

func (s *Server) approve(w http.ResponseWriter, r *http.Request, _ Cred) error {
	var d Decision
	if err := decodeJSON(w, r, &d); err != nil {
		return err
	}
	p, err := s.cfg.Consent.UserApprove(d.Target)
	if err != nil {
		return err
	}
	s.cfg.Log.Info("update approved by the user", "target", p.Target)
	if s.cfg.Wake != nil {
		s.cfg.Wake() // install now rather than at the next scheduled check-in
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) postpone(w http.ResponseWriter, r *http.Request, _ Cred) error {
	var d Decision
	if err := decodeJSON(w, r, &d); err != nil {
		return err
	}
	until, err := s.until(d)
	if err != nil {
		return err
	}
	p, err := s.cfg.Consent.UserPostpone(d.Target, until)
	if err != nil {
		return err
	}
	s.report(deviceapi.EventPostponed, p.Target, "user", "postponed until "+until.UTC().Format(time.RFC3339))
	writeJSON(w, http.StatusOK, p)
	return nil
}

// until reads the postponement's end from Until or For.
func (s *Server) until(d Decision) (time.Time, error) {
	switch {
	case d.Until != nil && d.For != "":
		return time.Time{}, errorf(http.StatusBadRequest, "give until or for, not both")
	case d.Until != nil:
		return *d.Until, nil
	case d.For != "":
		dur, err := time.ParseDuration(d.For)
		if err != nil {
			return time.Time{}, errorf(http.StatusBadRequest, "for: %v", err)
		}
		return s.cfg.Now().Add(dur), nil
	}
	return time.Time{}, errorf(http.StatusBadRequest, "postpone needs until or for")
}

func (s *Server) decline(w http.ResponseWriter, r *http.Request, _ Cred) error {
	var d Decision
	if err := decodeJSON(w, r, &d); err != nil {
		return err
	}
	p, err := s.cfg.Consent.UserDecline(d.Target)
	if err != nil {
		return err
	}
	s.report(deviceapi.EventDeclined, p.Target, "user", "declined by the device's user")
	writeJSON(w, http.StatusOK, p)
	return nil
}
