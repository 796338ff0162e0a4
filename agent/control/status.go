package control

import (
	"context"
	"errors"
	"net/http"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/deviceapi"
)

func (s *Server) status(w http.ResponseWriter, r *http.Request, _ Cred) error {
	st, err := s.Status(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// Status assembles the device's status. While an update step holds the
// engine longer than StatusTimeout, the engine's part comes from the last
// snapshot and Busy is set: a status screen must not hang for the length
// of a download.
func (s *Server) Status(ctx context.Context) (Status, error) {
	id, enrolled := s.cfg.Identity()
	nonce, err := s.cfg.Nonces.Current()
	if err != nil {
		return Status{}, err
	}
	st := Status{DeviceID: id, HardwareID: s.cfg.HardwareID, Enrolled: enrolled,
		Settings: s.cfg.Settings.Get(), OfflineNonce: nonce, AgentVersion: s.cfg.AgentVersion,
		Security: deviceapi.Security{BootIntegrity: "unverified", Lockouts: s.lock.lockouts()}}
	if s.cfg.BootIntegrity != nil {
		st.Security.BootIntegrity = s.cfg.BootIntegrity()
	}
	// Read without the engine's lock, so a busy status shows it too.
	st.Alert = s.cfg.Engine.Alert()
	st.Security.Restricted = len(st.Alert) > 0
	wctx, cancel := context.WithTimeout(ctx, s.cfg.StatusTimeout)
	d, err := s.cfg.Engine.Details(wctx)
	cancel()
	switch {
	case err == nil:
		s.fill(&st, d)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		s.fromLast(&st)
	default:
		return Status{}, err
	}
	st.Pending = s.cfg.Consent.Pending()
	return st, nil
}

func (s *Server) fill(st *Status, d agent.Details) {
	s.cfg.Consent.dropInstalled(d.Installed)
	st.Boot = BootStatus{Booted: d.Boot.Booted, Primary: d.Boot.Primary, Trial: d.Boot.Trial}
	st.Installed, st.Outbox = d.Installed, d.Outbox
	st.Security.FailedVerifications = d.FailedVerifications
	if tx := d.Tx; tx != nil {
		st.Update = &UpdateStatus{Target: tx.Target.Name, Version: tx.Target.Custom.Version, State: string(tx.State),
			Reason: tx.Reason, Detail: tx.Detail, Started: tx.Started, Updated: tx.Updated}
	}
	s.mu.Lock()
	last := *st
	s.last = &last
	s.mu.Unlock()
}

func (s *Server) fromLast(st *Status) {
	st.Busy = true
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return
	}
	st.Boot, st.Update, st.Installed, st.Outbox = s.last.Boot, s.last.Update, s.last.Installed, s.last.Outbox
	st.Security.FailedVerifications = s.last.Security.FailedVerifications
}
