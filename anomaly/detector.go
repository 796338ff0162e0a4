package anomaly

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/rollout"
)

// Notification kinds of the detector, delivered like the rollout engine's
// (webhook, log).
const (
	KindAlert   rollout.Kind = "telemetry-anomaly"
	KindCleared rollout.Kind = "telemetry-anomaly-cleared"
)

// Detector watches the fleet's telemetry. Set the fields, call Init, then
// Run (or Tick, with a clock the caller controls).
type Detector struct {
	Store Store
	// Throttled returns the running total of device requests the server
	// refused with 429 or 503 (httpapi.Metrics.Throttled); nil leaves out
	// retry storms.
	Throttled func() uint64
	// Notifier receives alerts; nil sends none. Give it a rollout.Outbox,
	// whose Notify never blocks.
	Notifier rollout.Notifier
	// Registerer takes the detector's metrics; nil registers them nowhere.
	Registerer prometheus.Registerer
	Config     Config
	Now        func() time.Time
	Log        *slog.Logger

	metrics *metrics

	mu            sync.Mutex // one tick at a time
	series        map[key]*series
	active        map[key]*Alert
	lastRaised    map[key]time.Time
	eventFeeds    map[koshin.EventType]*feed
	reportFeed    feed
	devices       map[string]device
	throttledLast uint64
	throttledSeen bool
	started       bool
}

// Init checks the configuration and registers the metrics.
func (d *Detector) Init() error {
	d.Config = d.Config.WithDefaults()
	if err := d.Config.Validate(); err != nil {
		return err
	}
	if d.Store == nil {
		return errors.New("anomaly: Store is required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	d.metrics = newMetrics()
	if d.Registerer != nil {
		if err := d.metrics.register(d.Registerer); err != nil {
			return err
		}
	}
	d.reset()
	return nil
}

// reset forgets everything; the next tick reads the history again.
func (d *Detector) reset() {
	d.series, d.active, d.lastRaised = map[key]*series{}, map[key]*Alert{}, map[key]time.Time{}
	d.eventFeeds = map[koshin.EventType]*feed{}
	for t := range eventSignals {
		d.eventFeeds[t] = &feed{}
	}
	d.reportFeed, d.devices = feed{}, map[string]device{}
	d.throttledSeen, d.started = false, false
	d.metrics.active.Reset()
}

// Run ticks every Config.Bucket until ctx ends. It starts from the stored
// history, so a detector that takes over on another replica, or after a
// restart, carries on where the previous one stopped.
func (d *Detector) Run(ctx context.Context) error {
	d.mu.Lock()
	d.reset()
	d.mu.Unlock()
	t := time.NewTicker(d.Config.Bucket)
	defer t.Stop()
	for {
		if err := d.Tick(ctx); err != nil && ctx.Err() == nil {
			d.Log.Error("anomaly detector tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Tick reads what is new, then judges every series at Now.
func (d *Detector) Tick(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.Now()
	if !d.started {
		if err := d.start(ctx, now); err != nil {
			return err
		}
	}
	var errs []error
	for _, t := range slices.Sorted(maps.Keys(d.eventFeeds)) {
		if err := d.pollEvents(ctx, t, now); err != nil {
			errs = append(errs, fmt.Errorf("%s events: %w", t, err))
		}
	}
	if err := d.pollReports(ctx, now); err != nil {
		errs = append(errs, fmt.Errorf("reports: %w", err))
	}
	d.pollThrottled(now)
	d.evaluate(ctx, now)
	return errors.Join(errs...)
}

// start records that detection runs, with which thresholds, and restores
// the alerts still active from the audit log.
func (d *Detector) start(ctx context.Context, now time.Time) error {
	alerts, err := ListAlerts(ctx, d.Store, now.Add(-d.Config.span()), maxListed)
	if err != nil {
		return fmt.Errorf("restore alerts: %w", err)
	}
	for i := len(alerts) - 1; i >= 0; i-- { // oldest first: the newest raise wins
		a := alerts[i]
		k := key{a.Signal, a.Scope}
		d.lastRaised[k] = a.RaisedAt
		if a.Active() {
			d.active[k] = &a
		} else {
			delete(d.active, k)
		}
	}
	for k := range d.active {
		d.metrics.active.WithLabelValues(string(k.signal)).Inc()
	}
	d.audit(ctx, ActionStart, "telemetry", d.Config.String())
	d.started = true
	return nil
}

// observe counts n occurrences of a signal at t in every scope.
func (d *Detector) observe(sig Signal, scopes []Scope, t time.Time, n int) {
	b := d.Config.bucketOf(t)
	for _, sc := range scopes {
		k := key{sig, sc}
		s := d.series[k]
		if s == nil {
			s = &series{}
			d.series[k] = s
		}
		s.add(b, n)
	}
}

// evaluate judges every series, raising and clearing alerts, and forgets
// buckets older than the baseline.
func (d *Detector) evaluate(ctx context.Context, now time.Time) {
	b := d.Config.bucketOf(now)
	keys := slices.SortedFunc(maps.Keys(d.series), compareKeys)
	for _, k := range keys {
		r := d.Config.read(d.series[k], b, d.Config.Thresholds[k.signal])
		if k.scope.Kind == ScopeFleet {
			d.metrics.window.WithLabelValues(string(k.signal)).Set(float64(r.count))
		}
		d.judge(ctx, k, r, now)
		if !d.series[k].prune(b-d.Config.windowBuckets()-d.Config.baselineBuckets()) && d.active[k] == nil {
			delete(d.series, k)
		}
	}
	for k := range d.active {
		if d.series[k] == nil { // nothing counted in the whole span
			d.judge(ctx, k, reading{limit: 1}, now)
		}
	}
}

// judge raises an alert for a series that reached its limit, at most once
// per window, and clears an active one whose window fell below the limit
// it was raised at.
func (d *Detector) judge(ctx context.Context, k key, r reading, now time.Time) {
	if a := d.active[k]; a != nil {
		if r.count < a.Threshold {
			d.clear(ctx, k, a, now)
		}
		return
	}
	if r.count < r.limit || now.Sub(d.lastRaised[k]) < d.Config.Window {
		return
	}
	a := &Alert{Signal: k.signal, Scope: k.scope, Count: r.count, Threshold: r.limit, Baseline: r.baseline,
		Window: d.Config.Window, RaisedAt: now}
	d.active[k], d.lastRaised[k] = a, now
	d.metrics.raised.WithLabelValues(string(k.signal), k.scope.Kind).Inc()
	d.metrics.active.WithLabelValues(string(k.signal)).Inc()
	d.Log.Warn("telemetry anomaly", "signal", k.signal, "scope", k.scope.String(), "count", r.count,
		"threshold", r.limit, "baseline", r.baseline)
	d.audit(ctx, ActionRaise, a.auditTarget(), a.auditDetail())
	d.notify(ctx, a, KindAlert, a.Message())
}

func (d *Detector) clear(ctx context.Context, k key, a *Alert, now time.Time) {
	delete(d.active, k)
	a.ClearedAt = now
	d.metrics.active.WithLabelValues(string(k.signal)).Dec()
	d.Log.Info("telemetry anomaly cleared", "signal", k.signal, "scope", k.scope.String())
	d.audit(ctx, ActionClear, a.auditTarget(), a.auditDetail())
	d.notify(ctx, a, KindCleared, fmt.Sprintf("%s in %s back below %d per %s", a.Signal, a.Scope, a.Threshold, a.Window))
}

func (d *Detector) audit(ctx context.Context, action, target, detail string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), koshin.AuditWriteTimeout)
	defer cancel()
	e := &koshin.AuditEntry{Principal: Principal, Action: action, Target: target, Result: koshin.AuditOK, Detail: detail}
	if err := d.Store.AppendAudit(ctx, e); err != nil {
		d.Log.Error("audit entry not written", "action", action, "target", target, "err", err)
	}
}

func (d *Detector) notify(ctx context.Context, a *Alert, kind rollout.Kind, reason string) {
	if d.Notifier == nil {
		return
	}
	at := a.RaisedAt
	if kind == KindCleared {
		at = a.ClearedAt
	}
	n := rollout.Notification{
		ID:   fmt.Sprintf("%s-%s-%s-%d", kind, a.Signal, a.Scope, at.UnixNano()),
		Kind: kind, Time: at, Count: a.Count, Reason: reason,
	}
	if err := d.Notifier.Notify(ctx, n); err != nil {
		d.Log.Error("anomaly notification failed", "id", n.ID, "err", err)
	}
}

func compareKeys(a, b key) int {
	return cmp.Or(strings.Compare(string(a.signal), string(b.signal)), strings.Compare(a.scope.String(), b.scope.String()))
}
