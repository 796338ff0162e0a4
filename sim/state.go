package sim

import (
	"fmt"
	"strings"
	"time"
)

// State is a simulated device's state as the progress display shows it.
type State int

// States, in display order.
const (
	StateEnrolling   State = iota // enrolling, setting up, not checked in yet
	StateIdle                     // running its factory image, nothing to do
	StatePostponed                // its user postponed an offered update
	StateDownloading              // downloading and verifying
	StateInstalling               // switching to the new slot
	StateRebooting                // rebooting into, or trying, the new image
	StateUpdated                  // committed an update: runs the new image
	StateRolledBack               // its last update was rolled back
	StateRejected                 // its last update failed verification
	StateFailed                   // its last update failed otherwise
	StateDeclined                 // its user declined the update
	StateLost                     // the simulator gave up on it (see errors)
	numStates
)

var stateNames = [numStates]string{"enrolling", "idle", "postponed", "downloading", "installing", "rebooting",
	"updated", "rolled-back", "rejected", "failed", "declined", "lost"}

func (s State) String() string {
	if s < 0 || s >= numStates {
		return fmt.Sprintf("state(%d)", int(s))
	}
	return stateNames[s]
}

// Done reports whether a device in s has finished an update one way or
// another.
func (s State) Done() bool { return s >= StateUpdated }

// Snapshot is the fleet at one moment, for progress displays.
type Snapshot struct {
	Elapsed  time.Duration
	Devices  int
	States   [numStates]int
	CheckIns Latency
	// Errors counts unexpected errors (see ExpectedKinds); Throttled the
	// 429/503 answers with Retry-After.
	Errors, Throttled int64
	PowerCuts         int64
	// Outage is set while the injected outage lasts; Storm while the
	// fleet reconnects after it.
	Outage, Storm bool
}

// Count returns how many devices are in s.
func (s Snapshot) Count(st State) int { return s.States[st] }

// Done returns how many devices finished an update.
func (s Snapshot) Done() int {
	n := 0
	for st := StateUpdated; st < numStates; st++ {
		n += s.States[st]
	}
	return n
}

// String is a one-line summary: the non-zero states, check-ins and errors.
func (s Snapshot) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%5.1fs", s.Elapsed.Seconds())
	for st := State(0); st < numStates; st++ {
		if n := s.States[st]; n > 0 {
			fmt.Fprintf(&b, "  %s %d", st, n)
		}
	}
	fmt.Fprintf(&b, "  | check-ins %d p99 %.0fms", s.CheckIns.Count, s.CheckIns.P99)
	if s.Throttled > 0 {
		fmt.Fprintf(&b, "  throttled %d", s.Throttled)
	}
	if s.PowerCuts > 0 {
		fmt.Fprintf(&b, "  power cuts %d", s.PowerCuts)
	}
	fmt.Fprintf(&b, "  errors %d", s.Errors)
	switch {
	case s.Outage:
		b.WriteString("  [outage]")
	case s.Storm:
		b.WriteString("  [reconnect storm]")
	}
	return b.String()
}
