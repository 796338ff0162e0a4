package main

import (
	"fmt"
	"strings"
	"time"

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
		Registerer: m.API.Metrics.Registry, Config: m.Config.Anomaly.config(), Now: m.Now, Log: m.Log}
	if err := m.Anomaly.Init(); err != nil {
		return fmt.Errorf("config: %w", err)
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

// AnomalyConf tunes telemetry anomaly detection (EN 303 645 5.10-1,
// package anomaly); zero values take the package's defaults. A signal
// alerts when its count in one window reaches its floor and factor times
// its usual count per window over the baseline before it.
type AnomalyConf struct {
	Window          time.Duration `koanf:"window"`
	Baseline        time.Duration `koanf:"baseline"`
	RejectedUpdates ThresholdConf `koanf:"rejected_updates"`
	Lockouts        ThresholdConf `koanf:"lockouts"`
	UnknownVersions ThresholdConf `koanf:"unknown_versions"`
	RetryStorm      ThresholdConf `koanf:"retry_storm"`
}

// ThresholdConf is one signal's threshold.
type ThresholdConf struct {
	Factor float64 `koanf:"factor"`
	Floor  int     `koanf:"floor"`
}

func init() {
	for _, key := range strings.Fields(`anomaly.window anomaly.baseline`) {
		configKeys[key] = true
	}
	for _, sig := range []string{"rejected_updates", "lockouts", "unknown_versions", "retry_storm"} {
		configKeys["anomaly."+sig+".factor"], configKeys["anomaly."+sig+".floor"] = true, true
	}
}

// config is the detector's configuration; a threshold given in part keeps
// the default of the other part.
func (c AnomalyConf) config() anomaly.Config {
	out := anomaly.Config{Window: c.Window, Baseline: c.Baseline, Thresholds: map[anomaly.Signal]anomaly.Threshold{}}
	for sig, t := range map[anomaly.Signal]ThresholdConf{
		anomaly.SignalRejected: c.RejectedUpdates, anomaly.SignalLockouts: c.Lockouts,
		anomaly.SignalUnknownVersions: c.UnknownVersions, anomaly.SignalRetryStorm: c.RetryStorm,
	} {
		th := anomaly.DefaultThresholds[sig]
		if t.Factor != 0 {
			th.Factor = t.Factor
		}
		if t.Floor != 0 {
			th.Floor = t.Floor
		}
		out.Thresholds[sig] = th
	}
	return out
}
