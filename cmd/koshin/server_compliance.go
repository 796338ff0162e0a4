package main

import (
	"fmt"

	"github.com/koshin-ota/koshin/anomaly"
	"github.com/koshin-ota/koshin/fleetfacts"
)

// openCompliance wires what the server contributes to compliance evidence:
// fleet facts computed from the store (GET /api/v1/compliance/fleet), the
// telemetry anomaly detector (EN 303 645 5.10-1), whose alerts go to the
// metrics, the administrators' webhook and the audit log, and, when a
// product profile is configured, /.well-known/security.txt from its
// disclosure contact (5.2-1). It runs after the API's Init, whose metrics
// registry the detector joins.
func (m *ServerMain) openCompliance() error {
	cfg := m.API.Config
	m.Fleet = &fleetfacts.Fleet{Store: m.Store, PollInterval: cfg.PollInterval, PollJitter: cfg.PollJitter, Now: m.Now}
	m.API.Fleet = m.Fleet
	m.Anomaly = &anomaly.Detector{Store: m.Store, Throttled: m.API.Metrics.Throttled, Notifier: m.Outbox,
		Registerer: m.API.Metrics.Registry, Now: m.Now, Log: m.Log}
	if err := m.Anomaly.Init(); err != nil {
		return err
	}
	if c := m.Config.Compliance; c.Profile != "" {
		p, err := readProfile(c.Profile)
		if err != nil {
			return fmt.Errorf("compliance profile: %w", err)
		}
		m.API.SecurityTxt = p.SecurityTxt
	}
	return nil
}
