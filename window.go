package koshin

import (
	"sync"
	"time"
)

// Limits of maintenance windows.
const (
	MinWindowDuration = time.Minute
	MaxWindowDuration = 7 * 24 * time.Hour
	maxTimeZoneLen    = 64
)

// MaintenanceWindow is when updates may start (CCDS UPE08): each time the
// cron expression matches, in the given IANA time zone, a window opens for
// Duration. Both the server (it starts no new devices outside a window) and
// the device (it installs only inside one) honour it.
type MaintenanceWindow struct {
	Cron     string        `json:"cron"`
	Duration time.Duration `json:"duration"`
	TimeZone string        `json:"time_zone"`
}

// Validate parses the expression and loads the zone.
func (w *MaintenanceWindow) Validate() error {
	if _, err := ParseCron(w.Cron); err != nil {
		return err
	}
	if w.Duration < MinWindowDuration || w.Duration > MaxWindowDuration {
		return Errorf(EINVALID, "Window duration must be between %s and %s.", MinWindowDuration, MaxWindowDuration)
	}
	_, err := loadZone(w.TimeZone)
	return err
}

// InWindow reports whether t falls in a window: some matching minute s has
// s ≤ t < s+Duration. Matching is on the zone's wall clock, so "0 2 * * *"
// means 02:00 local all year; on a day when 02:00 does not exist (the spring
// DST gap) no window opens, and when it occurs twice both open. An invalid
// window is never open.
func (w *MaintenanceWindow) InWindow(t time.Time) bool {
	s, err := ParseCron(w.Cron)
	if err != nil || w.Duration < MinWindowDuration || w.Duration > MaxWindowDuration {
		return false
	}
	loc, err := loadZone(w.TimeZone)
	if err != nil {
		return false
	}
	_, ok := s.LastStart(t, t.Add(-w.Duration), loc)
	return ok
}

// zones caches loaded locations: time.LoadLocation reads the zone database
// from disk on every call, too slow for a check-in path. Names are
// validated before they are cached and the zone database is finite, so the
// cache is bounded.
var zones sync.Map // string → *time.Location

func loadZone(name string) (*time.Location, error) {
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	if name == "" || len(name) > maxTimeZoneLen || name == "Local" {
		return nil, Errorf(EINVALID, "Time zone must be an IANA name such as Europe/Berlin or UTC.")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, Errorf(EINVALID, "Unknown time zone %q.", name)
	}
	zones.Store(name, loc)
	return loc, nil
}
