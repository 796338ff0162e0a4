package sim

import (
	"context"
	"time"
)

// StormSummary describes the reconnect storm after an outage: every
// device comes back at the same instant.
type StormSummary struct {
	// Devices is how many devices had to check in again; CheckedIn how
	// many did before the run ended.
	Devices   int `json:"devices"`
	CheckedIn int `json:"checked_in"`
	// Seconds from the end of the outage until the last device checked in
	// (until the end of the run if not all did).
	Seconds  float64 `json:"seconds"`
	CheckIns Latency `json:"checkin_latency"`
	// Errors by kind during the storm; Unexpected counts those other than
	// 429/503 with Retry-After.
	Errors     map[string]int64 `json:"errors"`
	Unexpected int64            `json:"unexpected_errors"`
}

// scheduleOutage cuts the fleet off once it is up, for the scenario's
// duration, then wakes every device at once.
func (f *Fleet) scheduleOutage(ctx context.Context) {
	o := f.cfg.Scenario.Outage
	if !o.enabled() {
		return
	}
	select {
	case <-f.ready:
	case <-ctx.Done():
		return
	}
	if sleepCtx(ctx, o.At) != nil {
		return
	}
	f.log.Info("outage begins", "for", o.For)
	f.outage.Store(true)
	if sleepCtx(ctx, o.For) != nil {
		return
	}
	f.beginStorm()
}

// beginStorm ends the outage: storm statistics start, the network comes
// back and every device is woken.
func (f *Fleet) beginStorm() {
	f.stats.mu.Lock()
	f.stats.storm = &stormStats{}
	f.stats.mu.Unlock()
	f.mu.Lock()
	f.stormStart = time.Now()
	f.mu.Unlock()
	f.stormOn.Store(true)
	f.outage.Store(false)
	f.log.Info("outage over: every device reconnects now")
	f.wakeAll()
}

// stormOne records a device's first successful check-in of the storm;
// the last one ends it.
func (f *Fleet) stormOne() {
	want := int64(len(f.devices)) - f.lostN.Load()
	if f.stormN.Add(1) < want {
		return
	}
	f.endStorm()
}

// endStorm freezes the storm's statistics (once).
func (f *Fleet) endStorm() {
	if !f.stormOn.CompareAndSwap(true, false) {
		return
	}
	f.stats.mu.Lock()
	st, errs := f.stats.storm, f.stats.stormErrors
	f.stats.storm, f.stats.stormErrors = nil, map[string]int64{}
	f.stats.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stormEnd = time.Now()
	f.stormResult = &StormSummary{Devices: len(f.devices) - int(f.lostN.Load()), CheckedIn: int(f.stormN.Load()),
		Seconds: f.stormEnd.Sub(f.stormStart).Seconds(), CheckIns: st.checkins.summary(), Errors: errs, Unexpected: unexpected(errs)}
}

func (f *Fleet) stormFinished() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stormResult != nil
}
