package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/koshin-ota/koshin"
)

// Metrics are the server's Prometheus metrics. The rejection and event
// counters are also the raw material of anomaly detection (EN 303 645
// 5.10-1): a spike of bad certificates, signature failures or rate-limited
// sources is visible here first.
type Metrics struct {
	Registry    *prometheus.Registry
	requests    *prometheus.HistogramVec
	checkins    *prometheus.CounterVec
	enrollments *prometheus.CounterVec
	rejections  *prometheus.CounterVec
	logins      *prometheus.CounterVec
	events      *prometheus.CounterVec
}

// NewMetrics registers the server's metrics, the Go runtime and process
// collectors, and (st not nil) a collector of rollout states read from st
// at scrape time.
func NewMetrics(st koshin.RolloutStore) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "koshin_http_request_duration_seconds", Help: "HTTP request latency by API, route pattern and status code.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"api", "route", "code"}),
		checkins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koshin_checkins_total", Help: "Accepted device check-ins by answer (none, offer).",
		}, []string{"answer"}),
		enrollments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koshin_enrollments_total", Help: "Enrollment requests by method (token, preauthorized, renewal) and result.",
		}, []string{"method", "result"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koshin_rejections_total", Help: "Requests refused before or during handling, by API and reason.",
		}, []string{"api", "reason"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koshin_logins_total", Help: "Operator logins by result (ok, denied, locked).",
		}, []string{"result"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koshin_device_events_total", Help: "New device events by type.",
		}, []string{"type"}),
	}
	reg.MustRegister(m.requests, m.checkins, m.enrollments, m.rejections, m.logins, m.events,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if st != nil {
		reg.MustRegister(&rolloutCollector{store: st})
	}
	return m
}

func (m *Metrics) reject(api, reason string) { m.rejections.WithLabelValues(api, reason).Inc() }

// handler serves the registry.
func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// observe wraps next to record latency by route pattern (never the raw
// path, whose device IDs would explode the label set).
func (m *Metrics) observe(api string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		pattern := r.Pattern // set by the mux while routing
		if pattern == "" {
			pattern = "unmatched"
		}
		m.requests.WithLabelValues(api, pattern, strconv.Itoa(sw.status)).Observe(time.Since(start).Seconds())
	})
}

// statusWriter remembers the status code for metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController and http.ServeContent reach the
// underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// rolloutCollector reports how many rollouts are in each state.
type rolloutCollector struct{ store koshin.RolloutStore }

var rolloutDesc = prometheus.NewDesc("koshin_rollouts", "Rollouts by state.", []string{"state"}, nil)

// maxCountedRollouts bounds the work of one scrape.
const maxCountedRollouts = 100 * koshin.MaxLimit

func (c *rolloutCollector) Describe(ch chan<- *prometheus.Desc) { ch <- rolloutDesc }

func (c *rolloutCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, st := range []koshin.RolloutState{koshin.RolloutDraft, koshin.RolloutRunning, koshin.RolloutPaused,
		koshin.RolloutHalted, koshin.RolloutCompleted, koshin.RolloutAborted} {
		n, err := countRollouts(ctx, c.store, st)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(rolloutDesc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(rolloutDesc, prometheus.GaugeValue, float64(n), string(st))
	}
}

func countRollouts(ctx context.Context, st koshin.RolloutStore, state koshin.RolloutState) (int, error) {
	f := koshin.RolloutFilter{State: state, Page: koshin.SeqPage{Limit: koshin.MaxLimit}}
	n := 0
	for n < maxCountedRollouts {
		page, err := st.FindRollouts(ctx, f)
		if err != nil {
			return 0, err
		}
		n += len(page)
		if len(page) < koshin.MaxLimit {
			break
		}
		f.Page.Cursor = page[len(page)-1].ID
	}
	return n, nil
}
