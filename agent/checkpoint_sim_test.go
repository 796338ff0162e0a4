package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/agent"
)

// With the default time bound, a download checkpoints only once a second
// has passed as well: a fast install takes none and a power cut restarts
// it from byte 0; on a slow link it resumes from the last checkpoint.
func TestCheckpointMinInterval(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, false)
	for _, c := range []struct {
		name   string
		step   time.Duration // clock advance per read of the payload
		resume bool
	}{
		{"fast", 0, false},
		{"slow link", 5 * time.Second, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			setup := func(s *sim) {
				s.tweak = func(cfg *agent.Config) { cfg.CheckpointMinInterval = 0 } // the default
				s.fetch.Clock, s.fetch.Step = w.clock, c.step
			}
			dry := w.newSim(t, 7, 3)
			setup(dry)
			dry.converge(ctx)
			if v := dry.verdict(); v != "committed-new" {
				t.Fatalf("uninterrupted update ended %s", v)
			}
			names := dry.d.Inj.Names()
			dry.cleanup()
			last := -1
			for i, n := range names {
				if n == "slot B write" {
					last = i
				}
			}
			if last < 0 {
				t.Fatalf("no slot write among %v", names)
			}
			s := w.newSim(t, 7, 3)
			defer s.cleanup()
			setup(s)
			s.d.Inj.CutAt(last) // the payload's last write
			s.converge(ctx)
			if v := s.verdict(); v != "committed-new" {
				t.Fatalf("ended %s", v)
			}
			offs := s.fetch.Offsets()
			if len(offs) != 2 || offs[0] != 0 || (offs[1] > 0) != c.resume {
				t.Fatalf("open offsets %v, want a resume past 0: %v", offs, c.resume)
			}
		})
	}
}
