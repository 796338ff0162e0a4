package httpapi

import (
	dto "github.com/prometheus/client_model/go"
)

// throttleReasons are the rejection reasons that answer a device 429 or
// 503: it is asked to come back later.
var throttleReasons = []string{"overloaded", "rate-limited-source", "rate-limited-device", "rate-limited-enroll"}

// Throttled is the running total of device-API requests this server
// refused for load (429, 503). The anomaly detector watches its rate for
// retry storms (EN 303 645 5.10-1, CCDS UPD06).
func (m *Metrics) Throttled() uint64 {
	var n float64
	for _, reason := range throttleReasons {
		c, err := m.rejections.GetMetricWithLabelValues(apiDevice, reason)
		if err != nil {
			continue
		}
		var pb dto.Metric
		if c.Write(&pb) == nil {
			n += pb.GetCounter().GetValue()
		}
	}
	return uint64(n)
}
