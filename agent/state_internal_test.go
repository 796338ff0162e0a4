package agent

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTransitions(t *testing.T) {
	ok := [][2]State{
		{StateDownloading, StateVerifying}, {StateVerifying, StateDownloading},
		{StateInstalling, StateAwaitingReboot}, {StateInstalling, StateTrialBoot},
		{StateAwaitingReboot, StateTrialBoot}, {StateTrialBoot, StateHealthCheck},
		{StateHealthCheck, StateCommitted}, {StateHealthCheck, StateRolledBack},
	}
	bad := [][2]State{
		{StateDownloading, StateCommitted}, {StateDownloading, StateAwaitingReboot},
		{StateVerifying, StateHealthCheck}, {StateAwaitingReboot, StateCommitted},
		{StateTrialBoot, StateCommitted}, {StateCommitted, StateRolledBack},
		{StateRolledBack, StateCommitted}, {StateFailed, StateDownloading},
	}
	for _, p := range ok {
		if err := canMove(p[0], p[1]); err != nil {
			t.Errorf("%s → %s refused: %v", p[0], p[1], err)
		}
	}
	for _, p := range bad {
		if err := canMove(p[0], p[1]); err == nil {
			t.Errorf("%s → %s allowed", p[0], p[1])
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, s := range []string{"", "short", strings.Repeat("é", 600), "\xff\xfe" + strings.Repeat("x", 2000)} {
		got := truncate(s, maxDetail)
		if len(got) > maxDetail || !utf8.ValidString(got) {
			t.Errorf("truncate(%.10q…) = %d bytes, valid %v", s, len(got), utf8.ValidString(got))
		}
	}
}
