package koshin_test

import (
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

func TestMaintenanceWindowInWindow(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("zone database missing: %v", err)
	}
	nightly := koshin.MaintenanceWindow{Cron: "0 2 * * *", Duration: 3 * time.Hour, TimeZone: "Europe/Berlin"}
	weekend := koshin.MaintenanceWindow{Cron: "0 22 * * 5", Duration: 56 * time.Hour, TimeZone: "UTC"} // Fri 22:00 → Mon 06:00
	tests := []struct {
		name string
		w    koshin.MaintenanceWindow
		t    time.Time
		want bool
	}{
		{"opens at start", nightly, time.Date(2026, 6, 10, 2, 0, 0, 0, berlin), true},
		{"inside", nightly, time.Date(2026, 6, 10, 4, 59, 59, 0, berlin), true},
		{"closes at end", nightly, time.Date(2026, 6, 10, 5, 0, 0, 0, berlin), false},
		{"before", nightly, time.Date(2026, 6, 10, 1, 59, 0, 0, berlin), false},
		{"zone matters", nightly, time.Date(2026, 6, 10, 3, 30, 0, 0, time.UTC), false}, // 05:30 in Berlin (CEST)
		{"spans midnight and days", weekend, time.Date(2026, 3, 9, 5, 59, 0, 0, time.UTC), true},
		{"weekend over", weekend, time.Date(2026, 3, 9, 6, 0, 0, 0, time.UTC), false},
		// 2026-03-29: Berlin skips 02:00-03:00, so no nightly window opens.
		{"dst gap", nightly, time.Date(2026, 3, 29, 3, 30, 0, 0, berlin), false},
		{"invalid zone never open", koshin.MaintenanceWindow{Cron: "* * * * *", Duration: time.Hour, TimeZone: "Mars/Olympus"}, time.Unix(0, 0), false},
	}
	for _, tt := range tests {
		if got := tt.w.InWindow(tt.t); got != tt.want {
			t.Errorf("%s: InWindow(%v) = %v, want %v", tt.name, tt.t, got, tt.want)
		}
	}
}

func TestMaintenanceWindowValidate(t *testing.T) {
	ok := koshin.MaintenanceWindow{Cron: "0 2 * * *", Duration: time.Hour, TimeZone: "Asia/Tokyo"}
	if err := ok.Validate(); err != nil {
		t.Skipf("zone database missing: %v", err)
	}
	for _, w := range []koshin.MaintenanceWindow{
		{Cron: "0 2 * *", Duration: time.Hour, TimeZone: "UTC"},
		{Cron: "0 2 * * *", Duration: 0, TimeZone: "UTC"},
		{Cron: "0 2 * * *", Duration: 8 * 24 * time.Hour, TimeZone: "UTC"},
		{Cron: "0 2 * * *", Duration: time.Hour, TimeZone: ""},
		{Cron: "0 2 * * *", Duration: time.Hour, TimeZone: "Local"},
		{Cron: "0 2 * * *", Duration: time.Hour, TimeZone: "../../etc/passwd"},
	} {
		wantCode(t, w.Validate(), koshin.EINVALID)
	}
}

func BenchmarkInWindowWeekly(b *testing.B) {
	w := koshin.MaintenanceWindow{Cron: "0 2 * * 6", Duration: 4 * time.Hour, TimeZone: "Europe/Berlin"}
	t0 := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	for b.Loop() {
		w.InWindow(t0)
	}
}
