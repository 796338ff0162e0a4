package koshin_test

import (
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

func TestThresholdExceeded(t *testing.T) {
	tests := []struct {
		name string
		th   koshin.Threshold
		s    koshin.PhaseStats
		want bool
	}{
		{"count reached", koshin.Threshold{MaxFailures: 3}, koshin.PhaseStats{Failed: 3, Succeeded: 50}, true},
		{"count not reached", koshin.Threshold{MaxFailures: 3}, koshin.PhaseStats{Failed: 2, Succeeded: 50}, false},
		{"percent reached", koshin.Threshold{MaxFailurePercent: 10}, koshin.PhaseStats{Failed: 1, Succeeded: 9}, true},
		{"percent not reached", koshin.Threshold{MaxFailurePercent: 10}, koshin.PhaseStats{Failed: 1, Succeeded: 10}, false},
		{"percent of started only", koshin.Threshold{MaxFailurePercent: 50}, koshin.PhaseStats{Failed: 1, InProgress: 1, Waiting: 100, Unassigned: 100}, true},
		{"no failures", koshin.Threshold{MaxFailurePercent: 0.01}, koshin.PhaseStats{Succeeded: 10}, false},
		{"nothing started", koshin.Threshold{MaxFailurePercent: 1}, koshin.PhaseStats{Waiting: 5}, false},
		{"either bound", koshin.Threshold{MaxFailures: 100, MaxFailurePercent: 20}, koshin.PhaseStats{Failed: 2, Succeeded: 8}, true},
		{"declined is not failure", koshin.Threshold{MaxFailures: 1}, koshin.PhaseStats{Declined: 5}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := tt.th.Exceeded(tt.s)
			if got != tt.want || (got && why == "") {
				t.Fatalf("Exceeded = %v %q, want %v", got, why, tt.want)
			}
		})
	}
}

func TestThresholdValidate(t *testing.T) {
	wantCode(t, (&koshin.Threshold{}).Validate(true), koshin.EINVALID)
	wantCode(t, (&koshin.Threshold{MaxFailurePercent: 101}).Validate(false), koshin.EINVALID)
	wantCode(t, (&koshin.Threshold{MaxFailures: -1}).Validate(false), koshin.EINVALID)
	if err := (&koshin.Threshold{}).Validate(false); err != nil {
		t.Fatal(err)
	}
}

func running(phases ...koshin.Phase) *koshin.Rollout {
	return &koshin.Rollout{
		State: koshin.RolloutRunning, Phases: phases, Threshold: koshin.Threshold{MaxFailures: 2},
		PhaseStartedAt: time.Unix(1000, 0),
	}
}

func TestDecide(t *testing.T) {
	t0 := time.Unix(1000, 0)
	soak := koshin.Phase{Percent: 10, Soak: time.Hour}
	done := koshin.PhaseStats{Members: 10, Succeeded: 10, LastFinishedAt: t0.Add(time.Minute)}
	tests := []struct {
		name string
		r    *koshin.Rollout
		s    koshin.PhaseStats
		now  time.Time
		want koshin.Action
	}{
		{"paused waits", func() *koshin.Rollout { r := running(soak, soak); r.State = koshin.RolloutPaused; return r }(), done, t0.Add(2 * time.Hour), koshin.ActionWait},
		{"threshold halts mid-phase", running(soak, soak), koshin.PhaseStats{Failed: 2, InProgress: 8}, t0, koshin.ActionHalt},
		{"in progress waits", running(soak, soak), koshin.PhaseStats{Succeeded: 5, InProgress: 5}, t0.Add(5 * time.Hour), koshin.ActionWait},
		{"unassigned waits", running(soak, soak), koshin.PhaseStats{Succeeded: 5, Unassigned: 5}, t0.Add(5 * time.Hour), koshin.ActionWait},
		{"soaking waits", running(soak, soak), done, t0.Add(time.Hour), koshin.ActionWait},
		{"soaked advances", running(soak, soak), done, t0.Add(time.Hour + time.Minute), koshin.ActionAdvance},
		{"manual awaits operator", running(koshin.Phase{Percent: 10, Manual: true}, soak), done, t0.Add(time.Hour), koshin.ActionAwaitOperator},
		{"last phase completes", running(soak), done, t0.Add(2 * time.Hour), koshin.ActionComplete},
		{"phase threshold override", func() *koshin.Rollout {
			r := running(koshin.Phase{Percent: 10, Threshold: &koshin.Threshold{MaxFailures: 1}}, soak)
			return r
		}(), koshin.PhaseStats{Failed: 1, Succeeded: 9}, t0, koshin.ActionHalt},
		{"empty phase soaks from its start", running(soak, soak), koshin.PhaseStats{}, t0.Add(30 * time.Minute), koshin.ActionWait},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.r.Decide(tt.s, tt.now)
			if d.Action != tt.want {
				t.Fatalf("Decide = %+v, want %s", d, tt.want)
			}
		})
	}
	if d := running(soak, soak).Decide(done, t0); d.At != t0.Add(time.Minute+time.Hour) {
		t.Fatalf("soak end = %v", d.At)
	}
}

func TestStartBudget(t *testing.T) {
	t0 := time.Date(2026, 3, 7, 2, 30, 0, 0, time.UTC)
	win := &koshin.MaintenanceWindow{Cron: "0 2 * * 6", Duration: 2 * time.Hour, TimeZone: "UTC"} // Saturdays 02:00-04:00
	tests := []struct {
		name string
		r    koshin.Rollout
		s    koshin.PhaseStats
		now  time.Time
		want int
	}{
		{"unlimited", koshin.Rollout{State: koshin.RolloutRunning}, koshin.PhaseStats{Unassigned: 500}, t0, 500},
		{"rate caps", koshin.Rollout{State: koshin.RolloutRunning, RatePerMinute: 50}, koshin.PhaseStats{Unassigned: 500}, t0, 50},
		{"recent starts count", koshin.Rollout{State: koshin.RolloutRunning, RatePerMinute: 50}, koshin.PhaseStats{Unassigned: 500, AssignedRecently: 45}, t0, 5},
		{"over budget is zero", koshin.Rollout{State: koshin.RolloutRunning, RatePerMinute: 50}, koshin.PhaseStats{Unassigned: 500, AssignedRecently: 60}, t0, 0},
		{"few left", koshin.Rollout{State: koshin.RolloutRunning, RatePerMinute: 50}, koshin.PhaseStats{Unassigned: 3}, t0, 3},
		{"not running", koshin.Rollout{State: koshin.RolloutHalted}, koshin.PhaseStats{Unassigned: 3}, t0, 0},
		{"inside window", koshin.Rollout{State: koshin.RolloutRunning, Window: win}, koshin.PhaseStats{Unassigned: 3}, t0, 3},
		{"outside window", koshin.Rollout{State: koshin.RolloutRunning, Window: win}, koshin.PhaseStats{Unassigned: 3}, t0.Add(2 * time.Hour), 0},
	}
	for _, tt := range tests {
		if got := tt.r.StartBudget(tt.s, tt.now); got != tt.want {
			t.Errorf("%s: StartBudget = %d, want %d", tt.name, got, tt.want)
		}
	}
}
