package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/deviceapi"
)

// busyError is a 429/503 answer carrying Retry-After.
type busyError struct{ after time.Duration }

func (b busyError) Error() string             { return "429 too many requests" }
func (b busyError) RetryAfter() time.Duration { return b.after }

// busyServer answers the first n check-ins with 429.
type busyServer struct {
	agent.Server
	n int
}

func (b *busyServer) CheckIn(ctx context.Context, c deviceapi.CheckIn) (deviceapi.CheckInResponse, error) {
	if b.n > 0 {
		b.n--
		return deviceapi.CheckInResponse{}, busyError{after: 10 * time.Minute}
	}
	return b.Server.CheckIn(ctx, c)
}

// Run waits a random start delay, honours Retry-After, backs off
// exponentially with full jitter, then polls at the server's interval
// (EN 303 645 5.9-3).
func TestRunBackOff(t *testing.T) {
	w := newWorld(t, false)
	s := w.newSim(t, 10, 3)
	defer s.cleanup()
	s.srv.Assign("")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var waits []time.Duration
	s.tweak = func(c *agent.Config) {
		c.Server = &busyServer{Server: c.Server, n: 3}
		c.Sleep = func(ctx context.Context, d time.Duration) error {
			waits = append(waits, d)
			if len(waits) == 6 {
				cancel()
			}
			return ctx.Err()
		}
	}
	if _, err := s.d.PowerOn(); err != nil {
		t.Fatal(err)
	}
	e := s.engine()
	defer e.Close()
	if err := e.Run(ctx); err != context.Canceled {
		t.Fatalf("run: %v", err)
	}
	if len(waits) != 6 {
		t.Fatalf("waits %v", waits)
	}
	if waits[0] >= agent.StartJitter {
		t.Fatalf("start delay %s not below %s", waits[0], agent.StartJitter)
	}
	for i := 1; i <= 3; i++ {
		if waits[i] < 10*time.Minute {
			t.Fatalf("wait %d = %s ignores Retry-After", i, waits[i])
		}
	}
	for i := 4; i < 6; i++ {
		if waits[i] < 60*time.Second || waits[i] >= 90*time.Second {
			t.Fatalf("wait %d = %s, want the server's 60 s interval plus up to 30 s jitter", i, waits[i])
		}
	}
}
