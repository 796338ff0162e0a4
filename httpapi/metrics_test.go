package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/koshin-ota/koshin"
)

// TestObserveLabelsByPattern: latency is labelled with the route pattern,
// never the raw path (device IDs would explode the label set), and
// unmatched requests share one label.
func TestObserveLabelsByPattern(t *testing.T) {
	m := NewMetrics(nil)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/devices/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	h := m.observe("management", mux)
	for _, p := range []string{"/api/v1/devices/abc", "/api/v1/devices/def", "/elsewhere"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, f := range families {
		if f.GetName() != "koshin_http_request_duration_seconds" {
			continue
		}
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "route" {
					got[l.GetValue()] += metric.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	if got["GET /api/v1/devices/{id}"] != 2 || got["unmatched"] != 1 || len(got) != 2 {
		t.Fatalf("labels %v", got)
	}
}

// TestErrorStatus pins the one mapping from domain codes to statuses.
func TestErrorStatus(t *testing.T) {
	for code, want := range map[string]int{
		koshin.EINVALID: 400, koshin.EUNAUTHORIZED: 401, koshin.EFORBIDDEN: 403, koshin.ENOTFOUND: 404,
		koshin.ECONFLICT: 409, koshin.ETOOMANY: 429, koshin.EUNAVAILABLE: 503, koshin.ENOTIMPLEMENTED: 501,
		koshin.EINTERNAL: 500, "": 500, "surprise": 500,
	} {
		if got := ErrorStatus(code); got != want {
			t.Errorf("ErrorStatus(%q) = %d, want %d", code, got, want)
		}
	}
}
