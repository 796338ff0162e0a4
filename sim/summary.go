package sim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/koshin-ota/koshin/agent"
)

// Summary is the outcome of a run, for humans (String) and machines
// (JSON).
type Summary struct {
	Seed    string  `json:"seed"`
	Devices int     `json:"devices"`
	Seconds float64 `json:"seconds"`
	// Ended says why the run stopped: done, until, storm over, timeout,
	// cancelled.
	Ended    string         `json:"ended"`
	Personas Personas       `json:"personas"`
	States   map[string]int `json:"states"`
	// Releases counts devices by the target their booted slot holds,
	// checked at the end.
	Releases map[string]int `json:"releases"`
	// Events counts the events the server acknowledged, by type.
	Events map[string]int64 `json:"events_delivered"`
	// Updated, RolledBack, Rejected, Failed, Declined count devices by the
	// outcome of their last update.
	Updated    int   `json:"updated"`
	RolledBack int   `json:"rolled_back"`
	Rejected   int   `json:"rejected"`
	Failed     int   `json:"failed"`
	Declined   int   `json:"declined"`
	Lost       int   `json:"lost"`
	PowerCuts  int64 `json:"power_cuts"`
	// ResumedDownloads counts downloads continued with HTTP Range;
	// ResumedInstalls updates that were interrupted (power cut, dropped
	// link) and still committed.
	ResumedDownloads int64 `json:"resumed_downloads"`
	ResumedInstalls  int64 `json:"resumed_installs"`
	// Bricked devices do not boot a slot holding the image they record as
	// installed; must be 0. OnTampered devices boot the rogue mirror's
	// payload; must be 0. Inconsistent devices have an anti-rollback
	// counter ahead of their booted image; must be 0.
	Bricked       int      `json:"bricked"`
	BrickedDetail []string `json:"bricked_detail,omitempty"`
	OnTampered    int      `json:"on_tampered_image"`
	Inconsistent  int      `json:"inconsistent"`
	// Errors counts HTTP errors by kind; UnexpectedErrors those other than
	// 429/503 with Retry-After and the injected faults. AgentErrors are
	// failures outside HTTP, by message.
	Errors           map[string]int64  `json:"errors"`
	ErrorExamples    map[string]string `json:"error_examples,omitempty"`
	UnexpectedErrors int64             `json:"unexpected_errors"`
	AgentErrors      map[string]int64  `json:"agent_errors,omitempty"`
	FailedPolls      int64             `json:"failed_polls"`
	Requests         int64             `json:"requests"`
	CheckIns         Latency           `json:"checkin_latency"`
	Storm            *StormSummary     `json:"storm,omitempty"`
}

// OK reports whether the run kept every device safe: none bricked, none
// booting a tampered image, none inconsistent, none lost.
func (s *Summary) OK() bool {
	return s.Bricked == 0 && s.OnTampered == 0 && s.Inconsistent == 0 && s.Lost == 0
}

// String is a few lines for a terminal.
func (s *Summary) String() string {
	out := fmt.Sprintf("%d devices, %.1fs (%s): updated %d, rolled back %d, rejected %d, failed %d, declined %d, lost %d\n",
		s.Devices, s.Seconds, s.Ended, s.Updated, s.RolledBack, s.Rejected, s.Failed, s.Declined, s.Lost)
	out += fmt.Sprintf("bricked %d, on tampered image %d, inconsistent %d; power cuts %d, resumed downloads %d, resumed installs %d\n",
		s.Bricked, s.OnTampered, s.Inconsistent, s.PowerCuts, s.ResumedDownloads, s.ResumedInstalls)
	out += fmt.Sprintf("check-ins %d: p50 %.1fms p99 %.1fms max %.1fms; unexpected errors %d of %d requests\n",
		s.CheckIns.Count, s.CheckIns.P50, s.CheckIns.P99, s.CheckIns.Max, s.UnexpectedErrors, s.Requests)
	if st := s.Storm; st != nil {
		out += fmt.Sprintf("reconnect storm: %d of %d devices back in %.2fs, check-in p99 %.1fms, unexpected errors %d\n",
			st.CheckedIn, st.Devices, st.Seconds, st.CheckIns.P99, st.Unexpected)
	}
	return out
}

// finish checks every device and builds the summary.
func (f *Fleet) finish(ended string) *Summary {
	if f.stormOn.Load() {
		f.endStorm()
	}
	s := &Summary{Seed: f.cfg.Seed, Devices: len(f.devices), Seconds: time.Since(f.start).Seconds(), Ended: ended,
		Personas: f.personas, States: map[string]int{}, Releases: map[string]int{}, Events: map[string]int64{},
		ResumedDownloads: f.resumedDownloads.Load(), ResumedInstalls: f.resumedInstalls.Load()}
	f.checkAll(s)
	for _, d := range f.devices {
		if d.board != nil {
			s.PowerCuts += int64(d.board.Inj.Cuts())
		}
		st := d.State()
		s.States[st.String()]++
		switch st {
		case StateUpdated:
			s.Updated++
		case StateRolledBack:
			s.RolledBack++
		case StateRejected:
			s.Rejected++
		case StateFailed:
			s.Failed++
		case StateDeclined:
			s.Declined++
		case StateLost:
			s.Lost++
		}
	}
	s.Errors, _ = f.stats.snapshotErrors()
	s.UnexpectedErrors = unexpected(s.Errors)
	f.stats.mu.Lock()
	s.CheckIns, s.Requests = f.stats.checkins.summary(), f.stats.requests
	if len(f.stats.examples) > 0 {
		s.ErrorExamples = maps.Clone(f.stats.examples)
	}
	f.stats.mu.Unlock()
	f.mu.Lock()
	for t, n := range f.events {
		s.Events[string(t)] = n
	}
	if len(f.agentErrs) > 0 {
		s.AgentErrors = maps.Clone(f.agentErrs)
	}
	s.FailedPolls, s.Storm = f.pollErrors, f.stormResult
	f.mu.Unlock()
	return s
}

// maxBrickedDetail bounds the bricked devices described in the summary.
const maxBrickedDetail = 10

// checkAll runs the final check on every device, a few at a time.
func (f *Fleet) checkAll(s *Summary) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, d := range f.devices {
		if d.board == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r := d.finalCheck()
			mu.Lock()
			defer mu.Unlock()
			s.Releases[r.release]++
			if r.bricked != "" {
				s.Bricked++
				if len(s.BrickedDetail) < maxBrickedDetail {
					s.BrickedDetail = append(s.BrickedDetail, d.id.Serial+": "+r.bricked)
				}
			}
			if r.onTampered {
				s.OnTampered++
			}
			if r.inconsistent {
				s.Inconsistent++
			}
		})
	}
	wg.Wait()
	sort.Strings(s.BrickedDetail)
}

type checkResult struct {
	release      string
	bricked      string // why, if bricked
	onTampered   bool
	inconsistent bool
}

// finalTimeout bounds one device's final check.
const finalTimeout = 30 * time.Second

// finalCheck is what a technician would do with each device at the end:
// power it up (offline, with no more cuts), let the agent resolve
// whatever was in flight, and check that the booted slot holds exactly
// the signed image the device records as installed, and that the
// anti-rollback counter is not ahead of it.
func (d *device) finalCheck() checkResult {
	ctx, cancel := context.WithTimeout(context.Background(), finalTimeout)
	defer cancel()
	d.offline.Store(true)
	d.board.Inj.CutAt(-1)
	how := reboot
	if d.board.Inj.Dead() {
		how = powerOn
	}
	for range 5 {
		if err := d.boot(how); err != nil {
			return checkResult{bricked: "does not boot: " + err.Error()}
		}
		eng, err := agent.New(d.engineConfig())
		if err != nil {
			return checkResult{bricked: "agent: " + err.Error()}
		}
		err = eng.Start(ctx)
		if errors.Is(err, agent.ErrReboot) {
			eng.Close()
			how = reboot
			continue
		}
		if err != nil {
			eng.Close()
			return checkResult{bricked: "agent cannot start: " + err.Error()}
		}
		d.observe(ctx, eng)
		st, err := eng.Status(ctx)
		eng.Close()
		if err != nil {
			return checkResult{bricked: "status: " + err.Error()}
		}
		return d.judge(st)
	}
	return checkResult{bricked: "reboot loop"}
}

func (d *device) judge(st agent.Status) checkResult {
	f := d.f
	comp := f.factory.custom.Component
	in, ok := st.Installed[comp]
	if !ok {
		in = f.factory.installed[comp]
	}
	r := checkResult{release: in.Target}
	n, known := f.targetLength(in.SHA256)
	if !known {
		r.bricked = "records an image the simulator never saw signed: " + in.Target
		return r
	}
	sum, err := d.board.Slots.SHA256(st.Boot.Booted, int(n))
	if f.mirror != nil && err == nil && f.mirror.isTampered(sum) {
		r.onTampered = true
	}
	if err != nil || sum != in.SHA256 {
		r.bricked = fmt.Sprintf("booted slot %s does not hold %s", st.Boot.Booted, in.Target)
	}
	if c, err := d.board.Counter().Get(comp); err != nil || c > in.ReleaseCounter {
		r.inconsistent = true
	}
	return r
}
