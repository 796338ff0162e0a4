package tlslimit

import "github.com/prometheus/client_golang/prometheus"

var (
	busyDesc = prometheus.NewDesc("koshin_tls_handshake_slots_busy",
		"Handshake slots taken by handshakes computing (at most limits.max_handshakes).", nil, nil)
	inFlightDesc = prometheus.NewDesc("koshin_tls_handshakes_in_flight",
		"TLS handshakes under way on the device listener.", nil, nil)
	queuedDesc = prometheus.NewDesc("koshin_tls_handshakes_queued",
		"Accepted device connections waiting to start their TLS handshake.", nil, nil)
	totalDesc = prometheus.NewDesc("koshin_tls_handshakes_total",
		"TLS handshakes on the device listener by result (ok, failed, timeout, expired: closed after waiting limits.handshake_wait).",
		[]string{"result"}, nil)
)

// Collector reports a Listener's Stats to Prometheus at scrape time.
type Collector struct{ l *Listener }

// Collector returns the Listener's Prometheus collector.
func (l *Listener) Collector() *Collector { return &Collector{l} }

func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{busyDesc, inFlightDesc, queuedDesc, totalDesc} {
		ch <- d
	}
}

func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.l.Stats()
	ch <- prometheus.MustNewConstMetric(busyDesc, prometheus.GaugeValue, float64(s.Busy))
	ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(s.InFlight))
	ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(s.Queued))
	for _, r := range []struct {
		result string
		n      uint64
	}{{"ok", s.Completed}, {"failed", s.Failed}, {"timeout", s.TimedOut}, {"expired", s.Expired}} {
		ch <- prometheus.MustNewConstMetric(totalDesc, prometheus.CounterValue, float64(r.n), r.result)
	}
}
