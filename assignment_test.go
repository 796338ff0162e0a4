package koshin_test

import (
	"testing"

	"github.com/koshin-ota/koshin"
)

func TestAssignmentNext(t *testing.T) {
	type A = koshin.AssignmentState
	tests := []struct {
		from    A
		event   koshin.EventType
		mode    koshin.RolloutMode
		want    A
		changed bool
	}{
		{koshin.AssignmentOffered, koshin.EventDownloading, koshin.ModeAutomatic, koshin.AssignmentDownloading, true},
		{koshin.AssignmentPending, koshin.EventDownloading, koshin.ModeAutomatic, koshin.AssignmentDownloading, true},
		{koshin.AssignmentDownloading, koshin.EventDownloaded, koshin.ModeAutomatic, koshin.AssignmentDownloading, false},
		{koshin.AssignmentDownloading, koshin.EventDownloaded, koshin.ModeDownloadOnly, koshin.AssignmentDownloaded, true},
		{koshin.AssignmentDownloading, koshin.EventInstalling, koshin.ModeAutomatic, koshin.AssignmentInstalling, true},
		{koshin.AssignmentInstalling, koshin.EventRebooting, koshin.ModeAutomatic, koshin.AssignmentRebooting, true},
		{koshin.AssignmentRebooting, koshin.EventCommitted, koshin.ModeAutomatic, koshin.AssignmentCommitted, true},
		{koshin.AssignmentRebooting, koshin.EventRolledBack, koshin.ModeAutomatic, koshin.AssignmentRolledBack, true},
		{koshin.AssignmentOffered, koshin.EventRejected, koshin.ModeAutomatic, koshin.AssignmentRejected, true},
		{koshin.AssignmentInstalling, koshin.EventFailed, koshin.ModeAutomatic, koshin.AssignmentFailed, true},
		{koshin.AssignmentOffered, koshin.EventPostponed, koshin.ModeConsent, koshin.AssignmentPostponed, true},
		{koshin.AssignmentPostponed, koshin.EventDeclined, koshin.ModeConsent, koshin.AssignmentDeclined, true},
		{koshin.AssignmentPostponed, koshin.EventDownloading, koshin.ModeConsent, koshin.AssignmentDownloading, true},
		// Forced mode: the user cannot postpone or decline (CCDS UPD11).
		{koshin.AssignmentOffered, koshin.EventPostponed, koshin.ModeForced, koshin.AssignmentOffered, false},
		{koshin.AssignmentOffered, koshin.EventDeclined, koshin.ModeForced, koshin.AssignmentOffered, false},
		{koshin.AssignmentInstalling, koshin.EventPostponed, koshin.ModeConsent, koshin.AssignmentInstalling, false},
		// Ended assignments are never revived; approval is never skipped.
		{koshin.AssignmentCommitted, koshin.EventFailed, koshin.ModeAutomatic, koshin.AssignmentCommitted, false},
		{koshin.AssignmentSilentFailed, koshin.EventCommitted, koshin.ModeAutomatic, koshin.AssignmentSilentFailed, false},
		{koshin.AssignmentCancelled, koshin.EventDownloading, koshin.ModeAutomatic, koshin.AssignmentCancelled, false},
		{koshin.AssignmentAwaitingApproval, koshin.EventDownloading, koshin.ModeApproval, koshin.AssignmentAwaitingApproval, false},
		// Security events do not move assignments.
		{koshin.AssignmentDownloading, koshin.EventTamper, koshin.ModeAutomatic, koshin.AssignmentDownloading, false},
	}
	for _, tt := range tests {
		got, changed := tt.from.Next(tt.event, tt.mode)
		if got != tt.want || changed != tt.changed {
			t.Errorf("%s + %s (%s) = %s,%v; want %s,%v", tt.from, tt.event, tt.mode, got, changed, tt.want, tt.changed)
		}
	}
}

func TestAssignmentStateClasses(t *testing.T) {
	for _, s := range koshin.AssignmentStates() {
		if s.Active() && (s.Succeeded() || s.Failed()) {
			t.Errorf("%s is active and ended", s)
		}
		if s.HasDeadline() && !s.Active() {
			t.Errorf("%s has a deadline but is not active", s)
		}
		if s.CanTransition(koshin.AssignmentCancelled) != (s.Active() && !s.Started()) {
			t.Errorf("%s: cancellable should mean active and not started", s)
		}
	}
	if !koshin.AssignmentSilentFailed.Failed() || koshin.AssignmentDeclined.Failed() || !koshin.AssignmentDownloaded.Succeeded() {
		t.Error("outcome classes wrong")
	}
	for _, tt := range []struct {
		from, to koshin.AssignmentState
		ok       bool
	}{
		{koshin.AssignmentAwaitingApproval, koshin.AssignmentPending, true},
		{koshin.AssignmentPending, koshin.AssignmentOffered, true},
		{koshin.AssignmentPostponed, koshin.AssignmentOffered, true},
		{koshin.AssignmentOffered, koshin.AssignmentCancelled, true},
		{koshin.AssignmentDownloading, koshin.AssignmentCancelled, false},
		{koshin.AssignmentDownloading, koshin.AssignmentSilentFailed, true},
		{koshin.AssignmentAwaitingApproval, koshin.AssignmentSilentFailed, false},
		{koshin.AssignmentCommitted, koshin.AssignmentOffered, false},
		{koshin.AssignmentPending, koshin.AssignmentCommitted, false},
	} {
		if got := tt.from.CanTransition(tt.to); got != tt.ok {
			t.Errorf("%s → %s = %v, want %v", tt.from, tt.to, got, tt.ok)
		}
	}
}

func TestRolloutStateMachine(t *testing.T) {
	allowed := map[[2]koshin.RolloutState]bool{
		{koshin.RolloutDraft, koshin.RolloutRunning}: true, {koshin.RolloutRunning, koshin.RolloutHalted}: true,
		{koshin.RolloutHalted, koshin.RolloutRunning}: true, {koshin.RolloutPaused, koshin.RolloutAborted}: true,
	}
	forbidden := [][2]koshin.RolloutState{
		{koshin.RolloutDraft, koshin.RolloutPaused}, {koshin.RolloutHalted, koshin.RolloutPaused},
		{koshin.RolloutCompleted, koshin.RolloutRunning}, {koshin.RolloutAborted, koshin.RolloutRunning},
		{koshin.RolloutHalted, koshin.RolloutCompleted},
	}
	for p := range allowed {
		if !p[0].CanBecome(p[1]) {
			t.Errorf("%s → %s refused", p[0], p[1])
		}
	}
	for _, p := range forbidden {
		if p[0].CanBecome(p[1]) {
			t.Errorf("%s → %s allowed", p[0], p[1])
		}
	}
}
