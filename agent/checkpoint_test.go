package agent_test

import (
	"testing"
	"time"

	"github.com/koshin-ota/koshin/agent"
)

func TestCheckpointPolicy(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	now := t0
	p := agent.CheckpointPolicy{Every: 100, MinInterval: time.Second, Now: func() time.Time { return now }}
	p.Start(50)
	for _, c := range []struct {
		at  time.Duration
		off int64
		due bool
		why string
	}{
		{5 * time.Second, 149, false, "time passed, not enough bytes"},
		{5 * time.Second, 150, true, "both"},
		{5500 * time.Millisecond, 1000, false, "bytes passed, not enough time since the last checkpoint"},
		{6 * time.Second, 1000, true, "both"},
		{60 * time.Second, 1099, false, "time passed, not enough bytes"},
	} {
		now = t0.Add(c.at)
		if got := p.Due(c.off); got != c.due {
			t.Fatalf("Due(%d) at +%v = %v, want %v (%s)", c.off, c.at, got, c.due, c.why)
		}
		if c.due {
			p.Done(c.off)
		}
	}
	// By bytes only: the clock is not even read.
	b := agent.CheckpointPolicy{Every: 100, Now: func() time.Time { t.Fatal("clock read"); return now }}
	b.Start(0)
	if b.Due(99) || !b.Due(100) {
		t.Fatal("bytes-only policy")
	}
}
