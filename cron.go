package koshin

import (
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// MaxCronLen bounds a cron expression.
const MaxCronLen = 256

// Schedule is a parsed five-field cron expression: minute hour day-of-month
// month day-of-week, each a comma-separated list of *, N, N-M, with an
// optional /step (*/15, 1-5/2, 10/20). Day of week is 0-7 with 0 and 7 both
// Sunday. As in Vixie cron, when both day fields are restricted a day
// matches if either does; a day field written with a leading * does not
// restrict. Names (MON, JAN) and @-macros are not supported: windows are
// typed rarely and checked often, and a smaller grammar is easier to fuzz.
type Schedule struct {
	minute, hour, dom, month, dow bitset
	domStar, dowStar              bool
}

type bitset uint64

func (b bitset) has(i int) bool { return b&(1<<uint(i)) != 0 }

// below returns the largest member < i.
func (b bitset) below(i int) (int, bool) {
	m := b & (1<<uint(i) - 1)
	if m == 0 {
		return 0, false
	}
	return 63 - bits.LeadingZeros64(uint64(m)), true
}

type cronField struct {
	name     string
	min, max int
}

var cronFields = [5]cronField{
	{"minute", 0, 59}, {"hour", 0, 23}, {"day of month", 1, 31}, {"month", 1, 12}, {"day of week", 0, 7},
}

// ParseCron parses a five-field cron expression. Errors are EINVALID.
func ParseCron(expr string) (*Schedule, error) {
	if len(expr) > MaxCronLen {
		return nil, Errorf(EINVALID, "Cron expression must be at most %d bytes.", MaxCronLen)
	}
	fields := strings.Fields(expr)
	if len(fields) != 5 {
		return nil, Errorf(EINVALID, "Cron expression needs 5 fields (minute hour day month weekday).")
	}
	var sets [5]bitset
	for i, f := range fields {
		b, err := parseCronField(f, cronFields[i])
		if err != nil {
			return nil, err
		}
		sets[i] = b
	}
	if sets[4].has(7) {
		sets[4] = sets[4]&^(1<<7) | 1 // 7 is Sunday too
	}
	return &Schedule{
		minute: sets[0], hour: sets[1], dom: sets[2], month: sets[3], dow: sets[4],
		domStar: fields[2][0] == '*', dowStar: fields[4][0] == '*',
	}, nil
}

func parseCronField(s string, f cronField) (bitset, error) {
	var set bitset
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, step, err := parseCronRange(part, f)
		if err != nil {
			return 0, err
		}
		for v := lo; v <= hi; v += step {
			set |= 1 << uint(v)
		}
	}
	return set, nil
}

// parseCronRange parses *, N, N-M, each optionally followed by /step.
func parseCronRange(part string, f cronField) (lo, hi, step int, err error) {
	rng, stepText, hasStep := strings.Cut(part, "/")
	step = 1
	if hasStep {
		if step, err = cronNumber(stepText, 1, f.max-f.min+1, f.name+" step"); err != nil {
			return
		}
	}
	switch a, b, isRange := strings.Cut(rng, "-"); {
	case rng == "*":
		return f.min, f.max, step, nil
	case isRange:
		if lo, err = cronNumber(a, f.min, f.max, f.name); err != nil {
			return
		}
		if hi, err = cronNumber(b, f.min, f.max, f.name); err != nil {
			return
		}
		if lo > hi {
			err = Errorf(EINVALID, "Cron %s range %q runs backwards.", f.name, rng)
		}
		return
	default:
		if lo, err = cronNumber(rng, f.min, f.max, f.name); err != nil {
			return
		}
		hi = lo
		if hasStep { // N/step means N through the maximum
			hi = f.max
		}
		return
	}
}

func cronNumber(s string, min, max int, what string) (int, error) {
	if len(s) == 0 || len(s) > 2 || strings.Trim(s, "0123456789") != "" {
		return 0, Errorf(EINVALID, "Cron %s %q is not a number.", what, s)
	}
	n, _ := strconv.Atoi(s)
	if n < min || n > max {
		return 0, Errorf(EINVALID, "Cron %s %d is outside %d-%d.", what, n, min, max)
	}
	return n, nil
}

// Matches reports whether the wall-clock minute of t (in t's location)
// matches the schedule.
func (s *Schedule) Matches(t time.Time) bool {
	return s.minute.has(t.Minute()) && s.hour.has(t.Hour()) && s.dayMatches(t)
}

func (s *Schedule) dayMatches(t time.Time) bool {
	if !s.month.has(int(t.Month())) {
		return false
	}
	dom, dow := s.dom.has(t.Day()), s.dow.has(int(t.Weekday()))
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}

// LastStart returns the latest minute m with after < m ≤ t whose wall-clock
// time in loc matches, or false if there is none. It skips whole days and
// hours that cannot match, so a week-long search takes a few hundred steps
// rather than ten thousand.
func (s *Schedule) LastStart(t, after time.Time, loc *time.Location) (time.Time, bool) {
	m := t.Truncate(time.Minute)
	for m.After(after) {
		w := m.In(loc)
		next := m.Add(-time.Minute)
		switch {
		case !s.dayMatches(w):
			next = time.Date(w.Year(), w.Month(), w.Day(), 0, 0, 0, 0, loc).Add(-time.Minute)
		case !s.hour.has(w.Hour()):
			next = m.Add(-time.Duration(w.Minute()+1) * time.Minute)
		case !s.minute.has(w.Minute()):
			if p, ok := s.minute.below(w.Minute()); ok {
				next = m.Add(-time.Duration(w.Minute()-p) * time.Minute)
			} else {
				next = m.Add(-time.Duration(w.Minute()+1) * time.Minute)
			}
		default:
			return m, true
		}
		if !next.Before(m) { // guard against odd zone transitions
			next = m.Add(-time.Minute)
		}
		m = next
	}
	return time.Time{}, false
}
