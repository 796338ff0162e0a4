package anomaly

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Signal is a kind of telemetry the detector watches.
type Signal string

// Signals.
const (
	SignalRejected        Signal = "rejected-updates" // devices refused an invalid update (EN 303 645 5.3-9)
	SignalLockouts        Signal = "lockouts"         // devices locked their local interface after failed logins
	SignalUnknownVersions Signal = "unknown-versions" // reports of components no imported release explains
	SignalRetryStorm      Signal = "retry-storm"      // device requests refused with 429 or 503
)

// Signals lists every signal in report order.
var Signals = []Signal{SignalRejected, SignalLockouts, SignalUnknownVersions, SignalRetryStorm}

// Scope kinds: where a rate is measured.
const (
	ScopeFleet    = "fleet"
	ScopeHardware = "hardware"
	ScopeGroup    = "group"
)

// Scope is the whole fleet, one hardware ID or one device group.
type Scope struct {
	Kind  string `json:"kind"`
	Value string `json:"value,omitempty"`
}

func (s Scope) String() string {
	if s.Kind == ScopeFleet {
		return ScopeFleet
	}
	return s.Kind + ":" + s.Value
}

func parseScope(s string) (Scope, bool) {
	if s == ScopeFleet {
		return Scope{Kind: ScopeFleet}, true
	}
	kind, value, ok := strings.Cut(s, ":")
	if !ok || value == "" || (kind != ScopeHardware && kind != ScopeGroup) {
		return Scope{}, false
	}
	return Scope{Kind: kind, Value: value}, true
}

// Threshold decides when a window's count is anomalous: it must reach
// Floor, and Factor times the trailing baseline.
type Threshold struct {
	Factor float64
	Floor  int
}

// limit is the count that raises an alert against baseline.
func (t Threshold) limit(baseline float64) int {
	return max(t.Floor, int(math.Ceil(t.Factor*baseline)))
}

// Config tunes the detector. Zero fields take the defaults.
type Config struct {
	// Bucket is the counting granularity and how often Run ticks.
	Bucket time.Duration
	// Window is the span whose count is judged.
	Window time.Duration
	// Baseline is the trailing span before the window whose average count
	// per window is "normal".
	Baseline time.Duration
	// Thresholds per signal; missing signals take DefaultThresholds.
	Thresholds map[Signal]Threshold
}

// DefaultThresholds: three times the usual rate, and a floor under which
// a handful of events in a quiet fleet never alerts. Retry storms need
// more: single devices legitimately hit their rate limit now and then.
var DefaultThresholds = map[Signal]Threshold{
	SignalRejected:        {Factor: 3, Floor: 5},
	SignalLockouts:        {Factor: 3, Floor: 10},
	SignalUnknownVersions: {Factor: 3, Floor: 5},
	SignalRetryStorm:      {Factor: 3, Floor: 200},
}

// Defaults of Config.
const (
	DefaultBucket   = time.Minute
	DefaultWindow   = 15 * time.Minute
	DefaultBaseline = 24 * time.Hour
)

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.Bucket == 0 {
		c.Bucket = DefaultBucket
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.Baseline == 0 {
		c.Baseline = DefaultBaseline
	}
	th := make(map[Signal]Threshold, len(Signals))
	for _, s := range Signals {
		th[s] = DefaultThresholds[s]
		if t, ok := c.Thresholds[s]; ok {
			th[s] = t
		}
	}
	c.Thresholds = th
	return c
}

// Validate checks a configuration after WithDefaults.
func (c Config) Validate() error {
	if c.Bucket < time.Second || c.Window < c.Bucket || c.Window%c.Bucket != 0 ||
		c.Baseline < c.Window || c.Baseline%c.Window != 0 || c.Baseline/c.Bucket > 100_000 {
		return fmt.Errorf("anomaly: need bucket ≥ 1s, a window that is a multiple of the bucket, and a baseline that is a multiple of the window (at most 100000 buckets)")
	}
	for s, t := range c.Thresholds {
		if t.Factor < 1 || t.Factor > 1000 || t.Floor < 1 {
			return fmt.Errorf("anomaly: %s threshold needs a factor of 1 to 1000 and a floor of at least 1", s)
		}
	}
	return nil
}

func (c Config) windowBuckets() int64   { return int64(c.Window / c.Bucket) }
func (c Config) baselineBuckets() int64 { return int64(c.Baseline / c.Bucket) }
func (c Config) baselineWindows() int64 { return int64(c.Baseline / c.Window) }

// span is everything the detector remembers: the baseline and the window.
func (c Config) span() time.Duration { return c.Baseline + c.Window }

// String describes the configuration for the audit log.
func (c Config) String() string {
	var parts []string
	for _, s := range Signals {
		t := c.Thresholds[s]
		parts = append(parts, fmt.Sprintf("%s ≥ max(%d, %g × baseline)", s, t.Floor, t.Factor))
	}
	return fmt.Sprintf("window %s, baseline %s, bucket %s; %s", c.Window, c.Baseline, c.Bucket, strings.Join(parts, ", "))
}
