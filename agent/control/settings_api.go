package control

import (
	"fmt"
	"net/http"

	"github.com/koshin-ota/koshin/deviceapi"
)

func (s *Server) getSettings(w http.ResponseWriter, _ *http.Request, _ Cred) error {
	writeJSON(w, http.StatusOK, s.cfg.Settings.Get())
	return nil
}

// patchSettings changes the update settings (CCDS UPE05–UPE07); the change
// is persisted before it is answered, carried by every later check-in
// report, and reported as a settings-changed event.
func (s *Server) patchSettings(w http.ResponseWriter, r *http.Request, _ Cred) error {
	var p SettingsPatch
	if err := decodeJSON(w, r, &p); err != nil {
		return err
	}
	next := p.Apply(s.cfg.Settings.Get())
	if err := ValidateSettings(next); err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	if err := s.setSettings(next, "user"); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, next)
	return nil
}

// restoreDefaults restores the secure defaults (CCDS STS06): updates on,
// automatic, notifications on, and no declined or postponed release.
func (s *Server) restoreDefaults(w http.ResponseWriter, _ *http.Request, _ Cred) error {
	if err := s.setSettings(DefaultSettings(), "restore-defaults"); err != nil {
		return err
	}
	s.cfg.Consent.Forget()
	writeJSON(w, http.StatusOK, DefaultSettings())
	return nil
}

func (s *Server) setSettings(next deviceapi.Settings, reason string) error {
	prev := s.cfg.Settings.Get()
	if err := s.cfg.Settings.Set(next); err != nil {
		return err
	}
	if prev == next {
		return nil
	}
	s.cfg.Log.Info("update settings changed", "reason", reason, "settings", settingsText(next))
	s.report(deviceapi.EventSettingsChang, "", reason, settingsText(next))
	if s.cfg.Wake != nil && next.UpdatesEnabled && (!prev.UpdatesEnabled || (next.Automatic && !prev.Automatic)) {
		s.cfg.Wake()
	}
	return nil
}

func settingsText(s deviceapi.Settings) string {
	return fmt.Sprintf("updates_enabled=%t automatic=%t notifications=%t", s.UpdatesEnabled, s.Automatic, s.Notifications)
}
