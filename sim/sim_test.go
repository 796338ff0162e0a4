package sim

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/csv"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

// The scenario tests, which need a real server, are in cmd/koshin
// (sim_cmd_test.go): the server is assembled there.

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := h.quantile(c.q)
		// Buckets are 2^(1/8) wide: the answer is the bucket's upper bound.
		if got < c.want || float64(got) > float64(c.want)*1.1 {
			t.Errorf("quantile %g = %s, want %s (+9%%)", c.q, got, c.want)
		}
	}
	if s := h.summary(); s.Count != 1000 || s.Max != 1000 {
		t.Errorf("summary %+v", s)
	}
	var empty histogram
	if empty.quantile(0.5) != 0 {
		t.Error("empty histogram has a median")
	}
}

func TestAssignPersonas(t *testing.T) {
	s := Scenario{HealthFail: 0.1, BootFail: 0.05, Postpone: 0.2, Decline: 0.25}
	ps, got := assignPersonas(s, 200, 42)
	want := Personas{HealthFail: 20, BootFail: 10, Postpone: 40, Decline: 50}
	if got != want {
		t.Fatalf("personas %+v, want %+v", got, want)
	}
	var counted Personas
	for _, p := range ps {
		roles := 0
		for _, on := range []bool{p.healthFail, p.bootFail, p.postpone, p.decline} {
			if on {
				roles++
			}
		}
		if roles > 1 {
			t.Fatalf("a device has %d roles", roles)
		}
		counted.HealthFail += b2i(p.healthFail)
		counted.BootFail += b2i(p.bootFail)
		counted.Postpone += b2i(p.postpone)
		counted.Decline += b2i(p.decline)
	}
	if counted != want {
		t.Errorf("counted %+v, want %+v", counted, want)
	}
	again, _ := assignPersonas(s, 200, 42)
	for i := range ps {
		if ps[i] != again[i] {
			t.Fatal("the same seed gave different personas")
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestPreauthCSV: the list names each device's serial and the key its
// identity derives, in the upload's columns, and identities are stable.
func TestPreauthCSV(t *testing.T) {
	data := PreauthCSV("s3cret", "LAB", "demo-board", "plant-1", []string{"region=eu", "line=2"}, 3, 5)
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0][0] != "serial" || rows[1][0] != "LAB-000003" || rows[2][4] != "region=eu;line=2" {
		t.Fatalf("rows %q", rows)
	}
	id := DeviceIdentity("s3cret", "LAB", 4)
	der, _ := base64.StdEncoding.DecodeString(rows[2][2])
	if !bytes.Equal(der, id.PublicKeyDER) || id.ID != koshin.DeviceID(der) {
		t.Fatal("the CSV key is not device 4's")
	}
	if _, err := x509.ParsePKIXPublicKey(der); err != nil {
		t.Fatal(err)
	}
	if DeviceIdentity("other", "LAB", 4).ID == id.ID {
		t.Fatal("different seeds gave the same key")
	}
}

func TestConfigValidation(t *testing.T) {
	good := Config{ServerURL: "https://127.0.0.1:8443", ServerCA: []byte("pem"), Devices: 10, Factory: "os-1.0"}
	for name, edit := range map[string]func(*Config){
		"http URL":        func(c *Config) { c.ServerURL = "http://127.0.0.1:8443" },
		"no CA":           func(c *Config) { c.ServerCA = nil },
		"no devices":      func(c *Config) { c.Devices = 0 },
		"too many":        func(c *Config) { c.Devices = MaxDevices + 1 },
		"no factory":      func(c *Config) { c.Factory = "" },
		"few tokens":      func(c *Config) { c.Tokens = []string{"a"} },
		"share above 1":   func(c *Config) { c.Scenario.HealthFail = 1.5 },
		"shares sum":      func(c *Config) { c.Scenario.HealthFail, c.Scenario.Decline = 0.6, 0.6 },
		"cuts":            func(c *Config) { c.Scenario.PowerCuts = MaxPowerCuts + 1 },
		"negative drop":   func(c *Config) { c.Scenario.Link.Drop = -0.1 },
		"bad hardware":    func(c *Config) { c.HardwareID = "no spaces" },
		"long timeout":    func(c *Config) { c.Timeout = MaxTimeout + time.Hour },
		"negative rate":   func(c *Config) { c.Scenario.Link.Rate = -1 },
		"negative outage": func(c *Config) { c.Scenario.Outage.For = -time.Second },
	} {
		c := good
		edit(&c)
		c.defaults()
		if err := c.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := good
	c.defaults()
	if err := c.validate(); err != nil {
		t.Errorf("good config: %v", err)
	}
}

// TestErrorKinds: overload answers with Retry-After, the protocol's own
// 404s and injected faults are expected; other failures are not.
func TestErrorKinds(t *testing.T) {
	s := newStats()
	resp := func(code int, path string, retryAfter bool) *http.Response {
		r := &http.Response{StatusCode: code, Header: http.Header{}, Request: &http.Request{URL: &url.URL{Path: path}}}
		if retryAfter {
			r.Header.Set("Retry-After", "3")
		}
		return r
	}
	s.observe(routeCheckIn, time.Millisecond, resp(200, "/device/v1/checkin", false), nil)
	s.observe(routeCheckIn, 0, resp(429, "/device/v1/checkin", true), nil)
	s.observe(routeCheckIn, 0, resp(503, "/device/v1/checkin", true), nil)
	s.observe(routeDirector, 0, resp(404, "/device/v1/director/2.root.json", false), nil)
	s.observe(routeImage, 0, resp(404, "/device/v1/image/3.root.json", false), nil)
	s.observe(routeTargets, 0, nil, errInjectedDrop)
	s.count(KindInjectedDown)
	errs, _ := s.snapshotErrors()
	if n := unexpected(errs); n != 0 {
		t.Fatalf("unexpected %d: %v", n, errs)
	}
	s.observe(routeCheckIn, 0, resp(429, "/device/v1/checkin", false), nil)
	s.observe(routeImage, 0, resp(404, "/device/v1/image/targets.json", false), nil)
	s.observe(routeEvents, 0, resp(500, "/device/v1/events", false), nil)
	errs, _ = s.snapshotErrors()
	if n := unexpected(errs); n != 3 || errs["http-429"] != 1 || errs["http-500"] != 1 {
		t.Fatalf("unexpected %d: %v", n, errs)
	}
	if s.checkins.n != 1 {
		t.Errorf("%d check-in latencies, want 1", s.checkins.n)
	}
}
