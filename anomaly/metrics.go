package anomaly

import "github.com/prometheus/client_golang/prometheus"

// metrics are the detector's Prometheus metrics.
type metrics struct {
	raised *prometheus.CounterVec
	active *prometheus.GaugeVec
	window *prometheus.GaugeVec
}

func newMetrics() *metrics {
	return &metrics{
		raised: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "koshin_anomaly_alerts_total", Help: "Telemetry anomaly alerts raised, by signal and scope kind (fleet, hardware, group).",
		}, []string{"signal", "scope"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "koshin_anomaly_alerts_active", Help: "Telemetry anomaly alerts not yet cleared, by signal.",
		}, []string{"signal"}),
		window: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "koshin_anomaly_window_count", Help: "Fleet-wide count of each anomaly signal in the current detection window.",
		}, []string{"signal"}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.raised, m.active, m.window} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}
