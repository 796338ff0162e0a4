package main

import (
	"testing"
	"time"

	"github.com/koshin-ota/koshin/anomaly"
)

// Anomaly thresholds come from the file and the environment; a threshold
// given in part keeps the rest of its default, and an impossible window is
// refused.
func TestAnomalyConfig(t *testing.T) {
	p := writeConfig(t, `
anomaly:
  window: 30m
  lockouts: {factor: 5}
  retry_storm: {floor: 1000, factor: 2}
`)
	env := []string{"KOSHIN_ANOMALY__REJECTED_UPDATES__FLOOR=2", "KOSHIN_ANOMALY__BASELINE=12h"}
	cfg, err := loadServerConfig(p, func() []string { return env })
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Anomaly.config()
	want := map[anomaly.Signal]anomaly.Threshold{
		anomaly.SignalRejected:        {Factor: 3, Floor: 2},
		anomaly.SignalLockouts:        {Factor: 5, Floor: 10},
		anomaly.SignalUnknownVersions: anomaly.DefaultThresholds[anomaly.SignalUnknownVersions],
		anomaly.SignalRetryStorm:      {Factor: 2, Floor: 1000},
	}
	for sig, th := range want {
		if c.Thresholds[sig] != th {
			t.Errorf("%s threshold %+v, want %+v", sig, c.Thresholds[sig], th)
		}
	}
	if c.Window != 30*time.Minute || c.Baseline != 12*time.Hour {
		t.Errorf("window %s, baseline %s", c.Window, c.Baseline)
	}
	if err := c.WithDefaults().Validate(); err != nil {
		t.Errorf("valid configuration refused: %v", err)
	}
	bad := AnomalyConf{Window: 90 * time.Second}
	if err := bad.config().WithDefaults().Validate(); err == nil {
		t.Error("a 90s window (not whole buckets) accepted")
	}
	if _, err := loadServerConfig(writeConfig(t, "anomaly:\n  lockout: {factor: 2}\n"), func() []string { return nil }); err == nil {
		t.Error("misspelt signal accepted")
	}
}
