package control

import (
	"fmt"
	"net/http"
	"strings"
)

// unrestricted refuses h while the agent is restricted after detecting an
// unauthorised change (EN 303 645 5.7-2): the device keeps only its
// connection to the update server, and nothing local changes its software
// or how it updates until a verified update is committed or root clears
// the alert. Status, reading the settings, factory reset and clearing the
// alert stay available (see the package documentation).
func (s *Server) unrestricted(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, c Cred) error {
		alert := s.cfg.Engine.Alert()
		if len(alert) == 0 {
			return h(w, r, c)
		}
		reasons := make([]string, len(alert))
		for i, f := range alert {
			reasons[i] = f.Reason
		}
		return errorf(http.StatusConflict, "restricted: the agent detected an unauthorised change (%s) and talks only to the update server "+
			"until a verified update is committed or root clears the alert (koshin-agent clear-alert)", strings.Join(reasons, ", "))
	}
}

// clearAlert ends the restriction. Only root may: it is the administrator's
// judgement that the device is fit to run again, and it is reported to the
// server with the caller's credentials and note.
func (s *Server) clearAlert(w http.ResponseWriter, r *http.Request, c Cred) error {
	var req ClearAlertRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if c.UID != 0 {
		return errorf(http.StatusForbidden, "only root may clear an alert")
	}
	detail := fmt.Sprintf("cleared through the local control API by uid %d (pid %d)", c.UID, c.PID)
	if note := strings.TrimSpace(req.Note); note != "" {
		detail += ": " + note
	}
	if err := s.cfg.Engine.ClearAlert(r.Context(), detail); err != nil {
		return err
	}
	s.cfg.Log.Warn("alert cleared through the local control API", "uid", c.UID, "pid", c.PID)
	if s.cfg.Wake != nil {
		s.cfg.Wake() // report it now rather than at the next scheduled check-in
	}
	st, err := s.Status(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}
