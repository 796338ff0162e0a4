package sim

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// histogram counts durations in logarithmic buckets, eight per doubling
// (about 9 % wide), from 1 µs to about 18 hours, so that a run of any
// length keeps a fixed, small memory for its percentiles.
type histogram struct {
	counts [histBuckets]int64
	n      int64
	max    time.Duration
}

const (
	histPerOctave = 8
	histBuckets   = 36 * histPerOctave
)

func histBucket(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us <= 1 {
		return 0
	}
	return min(int(math.Log2(us)*histPerOctave), histBuckets-1)
}

// histUpper is the upper bound of bucket i.
func histUpper(i int) time.Duration {
	return time.Duration(math.Exp2(float64(i+1)/histPerOctave) * float64(time.Microsecond))
}

func (h *histogram) add(d time.Duration) {
	h.counts[histBucket(d)]++
	h.n++
	h.max = max(h.max, d)
}

// quantile returns the upper bound of the bucket holding quantile q, and
// never more than the largest value seen.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank && c > 0 {
			return min(histUpper(i), h.max)
		}
	}
	return h.max
}

// Latency summarises a histogram in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func (h *histogram) summary() Latency {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)) / 1000 }
	return Latency{Count: h.n, P50: ms(h.quantile(0.50)), P90: ms(h.quantile(0.90)), P99: ms(h.quantile(0.99)), Max: ms(h.max)}
}

// Error kinds. Everything the server answers with other than success is
// an error of some kind; ExpectedKinds are those a healthy fleet under
// load is meant to see: overload answers that tell the device when to
// come back (EN 303 645 5.9-3), and the faults the scenario injected.
const (
	Kind429RetryAfter = "http-429-retry-after"
	Kind503RetryAfter = "http-503-retry-after"
	KindInjectedDrop  = "injected-link-drop"
	KindInjectedDown  = "injected-outage"
	// KindSimNoSocket: the simulator itself ran out of sockets; not the
	// server's doing, but not expected either.
	KindSimNoSocket = "sim-no-socket"
)

// ExpectedKinds lists the error kinds that do not count as unexpected.
var ExpectedKinds = []string{Kind429RetryAfter, Kind503RetryAfter, KindInjectedDrop, KindInjectedDown}

func expectedKind(k string) bool {
	for _, e := range ExpectedKinds {
		if e == k {
			return true
		}
	}
	return false
}

// stats collects what the devices' transports see. One mutex is plenty:
// it is held for a few additions per request.
type stats struct {
	mu       sync.Mutex
	checkins histogram
	errors   map[string]int64
	examples map[string]string // one message per transport error kind
	requests int64
	// storm is the latency and errors during a reconnect storm.
	storm       *stormStats
	stormErrors map[string]int64
}

type stormStats struct {
	checkins histogram
}

func newStats() *stats {
	return &stats{errors: map[string]int64{}, examples: map[string]string{}, stormErrors: map[string]int64{}}
}

// observe records one request: its outcome and, for check-ins, latency.
// It reports whether the request failed.
func (s *stats) observe(route string, took time.Duration, resp *http.Response, err error) bool {
	kind := ""
	switch {
	case err != nil:
		if kind = transportKind(err); kind == "" {
			return false
		}
	case resp.StatusCode >= 300 && !benign(route, resp):
		kind = statusKind(resp)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if kind != "" {
		if _, ok := s.examples[kind]; !ok && err != nil {
			s.examples[kind] = shorten(err.Error(), 200)
		}
		s.errors[kind]++
		if s.storm != nil {
			s.stormErrors[kind]++
		}
		return true
	}
	if route == routeCheckIn && resp.StatusCode == http.StatusOK {
		s.checkins.add(took)
		if s.storm != nil {
			s.storm.checkins.add(took)
		}
	}
	return false
}

// count records an error the simulator itself produced or saw outside a
// request (an injected fault, a failed poll).
func (s *stats) count(kind string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errors[kind]++
	if s.storm != nil {
		s.stormErrors[kind]++
	}
}

// benign answers are part of the protocol: a device walking a root chain
// asks for the next root until it gets 404, and a resumed download past
// the end gets 416.
func benign(route string, resp *http.Response) bool {
	code := resp.StatusCode
	rootChain := (route == routeDirector || route == routeImage) && strings.HasSuffix(resp.Request.URL.Path, ".root.json")
	return rootChain && code == http.StatusNotFound ||
		(route == routeTargets || route == routeMirror) && code == http.StatusRequestedRangeNotSatisfiable
}

func statusKind(resp *http.Response) string {
	code := resp.StatusCode
	ra := resp.Header.Get("Retry-After") != ""
	switch {
	case code == http.StatusTooManyRequests && ra:
		return Kind429RetryAfter
	case code == http.StatusServiceUnavailable && ra:
		return Kind503RetryAfter
	}
	return "http-" + strconv.Itoa(code)
}

func transportKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, errInjectedDrop):
		return KindInjectedDrop
	case errors.Is(err, errOutage):
		return KindInjectedDown
	case errors.Is(err, errNoSocket):
		return KindSimNoSocket
	case errors.Is(err, context.Canceled):
		return "" // the run is ending
	case errors.As(err, &ne) && ne.Timeout():
		return "transport-timeout"
	case strings.Contains(err.Error(), "connection refused"):
		return "transport-refused"
	case strings.Contains(err.Error(), "connection reset"), strings.Contains(err.Error(), "broken pipe"),
		strings.Contains(err.Error(), "EOF"):
		return "transport-reset"
	case strings.Contains(err.Error(), "tls"):
		return "transport-tls"
	}
	return "transport-other"
}

func (s *stats) snapshotErrors() (all, storm map[string]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all, storm = make(map[string]int64, len(s.errors)), make(map[string]int64, len(s.stormErrors))
	for k, v := range s.errors {
		all[k] = v
	}
	for k, v := range s.stormErrors {
		storm[k] = v
	}
	return all, storm
}

func unexpected(errs map[string]int64) int64 {
	var n int64
	for k, v := range errs {
		if !expectedKind(k) {
			n += v
		}
	}
	return n
}
