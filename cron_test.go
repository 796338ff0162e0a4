package koshin_test

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

func TestParseCronMatches(t *testing.T) {
	// 2026-03-07 is a Saturday.
	at := func(day, h, m int) time.Time { return time.Date(2026, 3, day, h, m, 0, 0, time.UTC) }
	tests := []struct {
		expr string
		yes  []time.Time
		no   []time.Time
	}{
		{"* * * * *", []time.Time{at(7, 0, 0), at(9, 23, 59)}, nil},
		{"30 2 * * *", []time.Time{at(7, 2, 30)}, []time.Time{at(7, 2, 31), at(7, 3, 30)}},
		{"*/15 * * * *", []time.Time{at(7, 1, 0), at(7, 1, 45)}, []time.Time{at(7, 1, 10)}},
		{"0 1-5/2 * * *", []time.Time{at(7, 1, 0), at(7, 3, 0), at(7, 5, 0)}, []time.Time{at(7, 2, 0), at(7, 7, 0)}},
		{"10/20 * * * *", []time.Time{at(7, 4, 10), at(7, 4, 30), at(7, 4, 50)}, []time.Time{at(7, 4, 0), at(7, 4, 20)}},
		{"0 0 * * 6,7", []time.Time{at(7, 0, 0), at(8, 0, 0)}, []time.Time{at(9, 0, 0)}},
		{"0 0 * * 0", []time.Time{at(8, 0, 0)}, []time.Time{at(7, 0, 0)}},
		{"0 0 * 3 1-5", []time.Time{at(9, 0, 0)}, []time.Time{at(7, 0, 0)}},
		{"0 0 1 * *", []time.Time{at(1, 0, 0)}, []time.Time{at(2, 0, 0)}},
		// Both day fields restricted: either matches (Vixie cron).
		{"0 0 9 * 6", []time.Time{at(7, 0, 0), at(9, 0, 0)}, []time.Time{at(8, 0, 0)}},
		// A starred day field does not widen the other.
		{"0 0 */2 * 6", []time.Time{at(7, 0, 0)}, []time.Time{at(14, 0, 0), at(9, 0, 0)}},
		{"0 0 * 4 *", nil, []time.Time{at(7, 0, 0)}},
	}
	for _, tt := range tests {
		s, err := koshin.ParseCron(tt.expr)
		if err != nil {
			t.Fatalf("ParseCron(%q): %v", tt.expr, err)
		}
		for _, tm := range tt.yes {
			if !s.Matches(tm) {
				t.Errorf("%q should match %v", tt.expr, tm)
			}
		}
		for _, tm := range tt.no {
			if s.Matches(tm) {
				t.Errorf("%q should not match %v", tt.expr, tm)
			}
		}
	}
}

func TestParseCronErrors(t *testing.T) {
	for _, expr := range []string{
		"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * 32 * *",
		"* * * 13 *", "* * * * 8", "5-1 * * * *", "*/0 * * * *", "*/61 * * * *", "a * * * *",
		"-1 * * * *", "1- * * * *", ",1 * * * *", "1,,2 * * * *", "+1 * * * *", "001 * * * *",
		"@daily", "MON * * * *", "* * * * MON", strings.Repeat(" ", koshin.MaxCronLen+1) + "* * * * *",
	} {
		_, err := koshin.ParseCron(expr)
		wantCode(t, err, koshin.EINVALID)
	}
}

// lastStartBrute is the definition LastStart implements, minute by minute.
func lastStartBrute(s *koshin.Schedule, t, after time.Time, loc *time.Location) (time.Time, bool) {
	for m := t.Truncate(time.Minute); m.After(after); m = m.Add(-time.Minute) {
		if s.Matches(m.In(loc)) {
			return m, true
		}
	}
	return time.Time{}, false
}

// TestLastStartAgreesWithBruteForce: the day- and hour-skipping search
// finds exactly what a minute-by-minute scan finds, across time zones with
// DST transitions and half-hour offsets.
func TestLastStartAgreesWithBruteForce(t *testing.T) {
	exprs := []string{
		"0 2 * * *", "30 1 * * 0", "*/7 */5 * * *", "0 0 1,15 * *", "59 23 * * 1-5",
		"0 2 29 2 *", "15 3 * 3,10 0", "0 0 13 * 5", "* 2 * * *", "45 0 * * *",
	}
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"}
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, zone := range zones {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Skipf("zone database missing: %v", err)
		}
		for _, expr := range exprs {
			s, _ := koshin.ParseCron(expr)
			for range 40 {
				tm := base.Add(time.Duration(r.Int64N(int64(365 * 24 * time.Hour))))
				span := time.Duration(1+r.IntN(3*24*60)) * time.Minute
				got, ok := s.LastStart(tm, tm.Add(-span), loc)
				want, wok := lastStartBrute(s, tm, tm.Add(-span), loc)
				if ok != wok || !got.Equal(want) {
					t.Fatalf("%s %q at %v span %v: LastStart = %v,%v; brute force %v,%v", zone, expr, tm, span, got, ok, want, wok)
				}
			}
		}
	}
}

// FuzzParseCron: no expression panics or loops, errors are EINVALID, and an
// accepted expression matches only what its fields allow.
func FuzzParseCron(f *testing.F) {
	for _, s := range []string{"* * * * *", "*/15 1-5/2 1,15 * 0-7", "10/20 3 * 12 6", "0 0 31 2 *"} {
		f.Add(s, int64(0))
	}
	f.Fuzz(func(t *testing.T, expr string, sec int64) {
		s, err := koshin.ParseCron(expr)
		if err != nil {
			if koshin.ErrorCode(err) != koshin.EINVALID {
				t.Fatalf("error code %q", koshin.ErrorCode(err))
			}
			return
		}
		tm := time.Unix(sec%(1<<34), 0).UTC()
		s.Matches(tm)
		got, ok := s.LastStart(tm, tm.Add(-26*time.Hour), time.UTC)
		if ok && (!s.Matches(got) || got.After(tm)) {
			t.Fatalf("%q: LastStart(%v) = %v does not match", expr, tm, got)
		}
	})
}
