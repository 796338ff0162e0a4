package agent_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/koshin-ota/koshin/trust/verify"
)

// boot powers the simulated device on and starts an engine.
func (s *sim) boot(ctx context.Context) *agent.Engine {
	s.tb.Helper()
	if _, err := s.d.Reboot(); err != nil {
		s.tb.Fatal(err)
	}
	e := s.engine()
	if err := e.Start(ctx); err != nil && !errors.Is(err, agent.ErrReboot) {
		s.tb.Fatalf("start: %v", err)
	}
	return e
}

func events(srv interface{ Received() []deviceapi.Event }) map[deviceapi.EventType]deviceapi.Event {
	out := map[deviceapi.EventType]deviceapi.Event{}
	for _, e := range srv.Received() {
		out[e.Type] = e
	}
	return out
}

// A connection that drops every 10 KiB is resumed with Range requests
// from where it stopped, within one poll (CCDS UPE14).
func TestResumeAfterNetworkDrop(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, false)
	s := w.newSim(t, 1, 3)
	defer s.cleanup()
	s.fetch.DropAfter = 10 << 10
	e := s.boot(ctx)
	if _, err := e.Poll(ctx); !errors.Is(err, agent.ErrReboot) {
		t.Fatalf("poll: %v, want a reboot into the new slot", err)
	}
	e.Close()
	n := int64(len(w.newImage))
	if got := s.fetch.Served(); got >= 2*n || got < n {
		t.Fatalf("served %d bytes for a %d-byte payload, want in [n, 2n)", got, n)
	}
	offs := s.fetch.Offsets()
	if len(offs) < 4 || offs[0] != 0 {
		t.Fatalf("open offsets %v, want a resume after each drop", offs)
	}
	for i := 1; i < len(offs); i++ {
		if offs[i] != offs[i-1]+10<<10 {
			t.Fatalf("open offsets %v: resume %d does not continue where the drop left", offs, i)
		}
	}
	s.converge(ctx)
	if v := s.verdict(); v != "committed-new" {
		t.Fatalf("ended %s", v)
	}
}

// After a power cut in the middle of the download, the next boot resumes
// from the journal's checkpoint instead of byte 0.
func TestResumeAfterRestart(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, false)
	s := w.newSim(t, 2, 3)
	defer s.cleanup()
	// Point 19 is a slot write after three checkpoints (see the dry run
	// in TestPowerCutEverywhere: five metadata writes, then writes, sync,
	// journal per 8 KiB).
	s.d.Inj.CutAt(19)
	s.converge(ctx)
	if v := s.verdict(); v != "committed-new" {
		t.Fatalf("ended %s", v)
	}
	offs := s.fetch.Offsets()
	if len(offs) != 2 || offs[0] != 0 || offs[1] != 24<<10 {
		t.Fatalf("open offsets %v, want [0 %d]: resume from the last checkpoint", offs, 24<<10)
	}
	if got, n := s.fetch.Served(), int64(len(w.newImage)); got >= 2*n {
		t.Fatalf("served %d bytes for %d", got, n)
	}
}

// A link below the minimum throughput is abandoned by the watchdog; the
// failure is reported and nothing is switched (slow-retrieval attack).
func TestSlowLinkWatchdog(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, false)
	s := w.newSim(t, 3, 3)
	defer s.cleanup()
	s.fetch.Clock, s.fetch.Step = w.clock, 5*time.Second // 4 KiB per 5 s
	s.watchdog = verify.PayloadOptions{MinRate: 4 << 10, Window: 20 * time.Second, Now: w.clock.Now}
	e := s.boot(ctx)
	defer e.Close()
	if _, err := e.Poll(ctx); err != nil {
		t.Fatalf("poll: %v", err)
	}
	st, _ := e.Status(ctx)
	if st.Tx == nil || st.Tx.State != agent.StateFailed || st.Tx.Reason != "too-slow" {
		t.Fatalf("transaction %+v, want failed too-slow", st.Tx)
	}
	ev, ok := events(s.srv)[deviceapi.EventFailed]
	if !ok || ev.Reason != "too-slow" {
		t.Fatalf("events %v, want a too-slow failure report", s.srv.Received())
	}
	if env, _ := s.d.Boot.Read(); env.Slot != "A" || env.UpgradeAvailable {
		t.Fatalf("bootloader switched after a failed download: %+v", env)
	}
	if got := s.fetch.Served(); got >= int64(len(w.newImage)) {
		t.Fatalf("served %d bytes: the watchdog should stop the transfer early", got)
	}
}

// A payload that does not match its signed hash is rejected and reported
// as an invalid update; the inactive slot is never made bootable.
func TestTamperedPayloadRejected(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, false)
	tf := w.img.Targets.Signed.Targets[w.newName]
	path := trusttest.TargetPath(w.newName, tf.Hashes["sha256"])
	evil := append([]byte(nil), w.newImage...)
	evil[len(evil)/2] ^= 1
	w.img.SetFile(path, evil)
	s := w.newSim(t, 4, 3)
	defer s.cleanup()
	e := s.boot(ctx)
	defer e.Close()
	if _, err := e.Poll(ctx); err != nil {
		t.Fatalf("poll: %v", err)
	}
	ev, ok := events(s.srv)[deviceapi.EventRejected]
	if !ok || ev.Reason != trust.ErrMismatch.Error() {
		t.Fatalf("events %v, want rejected-invalid-update (mismatch)", s.srv.Received())
	}
	if env, _ := s.d.Boot.Read(); env.Slot != "A" || env.UpgradeAvailable {
		t.Fatalf("bootloader switched to a tampered image: %+v", env)
	}
	if c := s.counter(); c != 1 {
		t.Fatalf("counter %d", c)
	}
	if r := s.srv.Reports(); r[len(r)-1].Security.FailedVerifications != 0 {
		t.Fatal("failed verifications counted before they happened")
	}
	if _, err := e.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if r := s.srv.Reports(); r[len(r)-1].Security.FailedVerifications != 1 {
		t.Fatalf("report says %d failed verifications, want 1", r[len(r)-1].Security.FailedVerifications)
	}
}

// The new image fails its health check: the agent reverts, reboots into
// the old slot, reports rolled-back, keeps the counter, and does not
// download the same release again.
func TestHealthCheckFailureRollsBack(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, false)
	s := w.newSim(t, 5, 3)
	defer s.cleanup()
	variant{unhealthy: true}.apply(s)
	s.converge(ctx)
	if v := s.verdict(); v != "running-old" {
		t.Fatalf("ended %s", v)
	}
	ev := events(s.srv)[deviceapi.EventRolledBack]
	if ev.Reason != "health-check" || ev.Target != w.newName {
		t.Fatalf("rolled-back report %+v", ev)
	}
	// The server insists; the device does not loop.
	s.srv.Assign("")
	s.srv.Assign(w.newName)
	served := s.fetch.Served()
	e := s.boot(ctx)
	defer e.Close()
	for range 3 {
		if _, err := e.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if s.fetch.Served() != served {
		t.Fatal("a rolled-back release was downloaded again")
	}
}

// The new image never starts the agent: the bootloader falls back after
// bootlimit boots and the agent, back on the old image, reports it.
func TestRebootLoopFallsBack(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, false)
	s := w.newSim(t, 6, 3)
	defer s.cleanup()
	var bootsB int
	s.hang = func(booted string) bool {
		if booted == "B" {
			bootsB++
		}
		return booted == "B"
	}
	s.converge(ctx)
	if v := s.verdict(); v != "running-old" {
		t.Fatalf("ended %s", v)
	}
	if bootsB != 3 {
		t.Fatalf("slot B booted %d times, want bootlimit = 3", bootsB)
	}
	if ev := events(s.srv)[deviceapi.EventRolledBack]; ev.Reason != "boot-failed" {
		t.Fatalf("rolled-back report %+v", ev)
	}
}

// Security operations wait for the running transaction (CCDS UPE10), and a
// second agent process cannot share the state directory.
func TestOneTransactionAtATime(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, false)
	s := w.newSim(t, 7, 3)
	defer s.cleanup()
	gate := &gatedServer{Server: s.srv, entered: make(chan struct{}), release: make(chan struct{})}
	lock := s.d.Dir + "/agent.lock"
	s.tweak = func(c *agent.Config) { c.Server, c.LockFile = gate, lock }
	e := s.boot(ctx)
	defer e.Close()

	second := s.config()
	second.LockFile = lock
	if _, err := agent.New(second); !errors.Is(err, agent.ErrBusy) {
		t.Fatalf("second engine on the same state: %v, want ErrBusy", err)
	}

	pollDone := make(chan error)
	go func() {
		_, err := e.Poll(ctx)
		pollDone <- err
	}()
	<-gate.entered // the poll holds the lock, blocked in check-in

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for range 20 {
		err := e.Exclusive(cancelled, func() error { t.Error("ran during a transaction"); return nil })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Exclusive during a poll: %v, want it to wait (context.Canceled)", err)
		}
	}
	otherDone := make(chan error)
	go func() {
		otherDone <- e.Exclusive(ctx, func() error {
			if !gate.done.Load() {
				t.Error("other operation ran before the check-in finished")
			}
			return nil
		})
	}()
	close(gate.release)
	if err := <-pollDone; !errors.Is(err, agent.ErrReboot) {
		t.Fatalf("poll: %v", err)
	}
	if err := <-otherDone; err != nil {
		t.Fatal(err)
	}
}

// gatedServer blocks the first check-in until released.
type gatedServer struct {
	agent.Server
	entered, release chan struct{}
	once             sync.Once
	done             atomic.Bool
}

func (g *gatedServer) CheckIn(ctx context.Context, c deviceapi.CheckIn) (deviceapi.CheckInResponse, error) {
	g.once.Do(func() { close(g.entered); <-g.release })
	resp, err := g.Server.CheckIn(ctx, c)
	g.done.Store(true)
	return resp, err
}

// Reports queued while the server is unreachable survive reboots and are
// delivered once, when it is back (EN 303 645 5.9-2).
func TestReportsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, false)
	s := w.newSim(t, 12, 3)
	defer s.cleanup()
	e := s.boot(ctx)
	if _, err := e.Poll(ctx); !errors.Is(err, agent.ErrReboot) {
		t.Fatalf("poll: %v", err)
	}
	e.Close()
	s.srv.SetOffline(true)
	e = s.boot(ctx) // trial boot: health check, commit, report queued
	st, _ := e.Status(ctx)
	e.Close()
	if st.Tx.State != agent.StateCommitted || st.Outbox == 0 {
		t.Fatalf("state %s with %d queued reports, want committed with the report queued", st.Tx.State, st.Outbox)
	}
	if _, err := s.d.PowerOn(); err != nil { // power cycle while offline
		t.Fatal(err)
	}
	s.srv.SetOffline(false)
	e = s.boot(ctx)
	defer e.Close()
	if n := s.srv.Count(deviceapi.EventCommitted); n != 1 {
		t.Fatalf("server has %d committed reports, want 1", n)
	}
	if st, _ := e.Status(ctx); st.Outbox != 0 {
		t.Fatalf("%d reports still queued", st.Outbox)
	}
}
