package httpapi

import "testing"

// Throttled counts the device requests asked to come back later (429,
// 503), not those refused for other reasons or on the management API.
func TestThrottled(t *testing.T) {
	m := NewMetrics(nil)
	if n := m.Throttled(); n != 0 {
		t.Fatalf("fresh metrics: %d", n)
	}
	for range 3 {
		m.reject(apiDevice, "rate-limited-device")
	}
	m.reject(apiDevice, "overloaded")
	m.reject(apiDevice, "unknown-device")
	m.reject(apiManagement, "overloaded")
	if n := m.Throttled(); n != 4 {
		t.Fatalf("Throttled = %d, want 4", n)
	}
}
