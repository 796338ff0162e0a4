package main

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/tlslimit"
)

func TestServerConfigHandshakes(t *testing.T) {
	p := writeConfig(t, `
data_dir: /srv/koshin
limits:
  max_handshakes: 6
  handshake_timeout: 5s
`)
	env := []string{"KOSHIN_LIMITS__HANDSHAKE_QUEUE=100", "KOSHIN_LIMITS__HANDSHAKE_WAIT=1m"}
	cfg, err := loadServerConfig(p, func() []string { return env })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.resolve(); err != nil {
		t.Fatal(err)
	}
	want := tlslimit.Config{MaxHandshakes: 6, Queue: 100, Timeout: 5 * time.Second, MaxWait: time.Minute}
	if got := cfg.Limits.handshakeConfig(); got != want {
		t.Errorf("handshake config %+v, want %+v", got, want)
	}
	def := defaultServerConfig().Limits.handshakeConfig().WithDefaults()
	if def != (tlslimit.Config{}).WithDefaults() || def.Queue != tlslimit.DefaultQueue {
		t.Errorf("default handshake config %+v", def)
	}

	for name, set := range map[string]func(*LimitsConf){
		"negative max_handshakes": func(l *LimitsConf) { l.MaxHandshakes = -1 },
		"huge max_handshakes":     func(l *LimitsConf) { l.MaxHandshakes = tlslimit.MaxHandshakesLimit + 1 },
		"negative queue":          func(l *LimitsConf) { l.HandshakeQueue = -5 },
		"huge queue":              func(l *LimitsConf) { l.HandshakeQueue = tlslimit.MaxQueue + 1 },
		"short timeout":           func(l *LimitsConf) { l.HandshakeTimeout = time.Millisecond },
		"long timeout":            func(l *LimitsConf) { l.HandshakeTimeout = time.Hour },
		"short wait":              func(l *LimitsConf) { l.HandshakeWait = 10 * time.Millisecond },
		"long wait":               func(l *LimitsConf) { l.HandshakeWait = time.Hour },
	} {
		c := defaultServerConfig()
		c.DataDir = t.TempDir()
		set(&c.Limits)
		if err := c.resolve(); err == nil || !strings.Contains(err.Error(), "limits.") {
			t.Errorf("%s: %v, want a limits.* error", name, err)
		}
	}
}

// TestDeviceAPIHandshakeAdmission runs the device API with one handshake
// slot: devices still enroll and check in concurrently over mutual TLS,
// HTTP/2 is negotiated as before, and the handshakes show in the metrics.
func TestDeviceAPIHandshakeAdmission(t *testing.T) {
	e := newE2E(t, e2eOpts{config: func(c *ServerConfig) { c.Limits.MaxHandshakes = 1 }})
	admin := e.adminToken()
	var wg sync.WaitGroup
	for i := range 4 {
		d := e.enrollWithToken(admin, "hs-"+string(rune('a'+i)))
		wg.Go(func() {
			if _, err := d.checkIn(); err != nil {
				t.Errorf("check-in: %v", err)
			}
		})
	}
	wg.Wait()

	for _, c := range []struct {
		client *http.Client
		proto  string
	}{
		{e.httpClient(nil), "HTTP/2.0"},
		{&http.Client{Transport: &http.Transport{TLSClientConfig: e.tlsConfig(nil)}}, "HTTP/1.1"},
	} {
		resp, err := c.client.Get(e.srv.DeviceURL() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Proto != c.proto {
			t.Errorf("device /healthz: %s over %s, want 200 over %s", resp.Status, resp.Proto, c.proto)
		}
	}

	body := string(e.must(e.call("GET", "/metrics", admin, nil), 200).Body)
	for _, m := range []string{`koshin_tls_handshakes_total{result="ok"}`, "koshin_tls_handshakes_in_flight",
		"koshin_tls_handshakes_queued", "koshin_tls_handshake_slots_busy"} {
		if !strings.Contains(body, m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	if strings.Contains(body, `koshin_tls_handshakes_total{result="ok"} 0`) {
		t.Error("no completed handshake counted")
	}
}
