package main

import (
	"fmt"

	"github.com/koshin-ota/koshin/ui"
)

// openUI prepares the web UI. It calls the management API in-process for
// sign-in and every action, so the UI and the listener share one API
// handler (its limiters, lockouts and metrics).
func (m *ServerMain) openUI() error {
	m.uiAPI = m.API.ManagementHandler()
	u := &ui.UI{Store: m.Store, API: m.uiAPI, PollInterval: m.API.Config.PollInterval, PollJitter: m.API.Config.PollJitter,
		Version: koshinVersion(), Now: m.Now, Log: m.Log}
	if c := m.Config.Compliance; c.Profile != "" {
		p, err := readProfile(c.Profile)
		if err != nil {
			return fmt.Errorf("compliance profile: %w", err)
		}
		u.Compliance = &ui.Compliance{Profile: p, Path: c.Profile, Edition: c.Edition, Fleet: m.Fleet}
	}
	if err := u.Init(); err != nil {
		return err
	}
	m.UI = u
	return nil
}

// UIURL is the web UI's address.
func (m *ServerMain) UIURL() string { return m.ManagementURL() + ui.Prefix }
