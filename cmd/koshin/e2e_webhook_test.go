package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/rollout"
	"github.com/koshin-ota/koshin/webhook"
)

// TestWebhookOnFailure: a failed install and the halt it causes reach the
// configured webhook, signed with the shared secret (CCDS UPD10).
func TestWebhookOnFailure(t *testing.T) {
	secret := []byte(hex.EncodeToString(randomBytes(32)))
	var mu sync.Mutex
	var kinds []rollout.Kind
	var clock *fakeClock
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := webhook.ReadRequest(r, secret, clock.Now(), time.Minute)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var n rollout.Notification
		json.Unmarshal(body, &n)
		mu.Lock()
		kinds = append(kinds, n.Kind)
		mu.Unlock()
	}))
	defer recv.Close()
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "webhook.secret")
	e := newE2E(t, e2eOpts{config: func(c *ServerConfig) {
		c.Webhook = WebhookConf{URL: recv.URL, SecretFile: secretFile}
	}, before: func(e *e2e) { e.writeFileAt(secretFile, secret) }}, e2eRelease{name: "fw-2.0", hw: []string{"board-a"}, counter: 2})
	clock = e.clock
	admin := e.adminToken()
	e.must(e.call("POST", "/api/v1/releases/import", admin, nil), 200)
	d := e.enrollWithToken(admin, "SN-1")
	d.mustCheckIn()
	id := e.createRollout(admin, map[string]any{"release": "fw-2.0", "selector": map[string]any{"all": true},
		"phases": []map[string]any{{"percent": 100}}, "threshold": map[string]any{"max_failures": 1},
		"silence_timeout": int64(time.Hour), "mode": "automatic"})
	e.must(e.call("POST", fmt.Sprintf("/api/v1/rollouts/%d/start", id), admin, nil), 200)
	e.tick()
	d.mustCheckIn()
	d.send("fw-2.0", deviceapi.EventDownloading, deviceapi.EventFailed)
	e.tick()
	if n := e.srv.Outbox.Flush(context.Background()); n < 2 {
		t.Fatalf("delivered %d notifications", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(kinds, rollout.KindFailed) || !slices.Contains(kinds, rollout.KindHalted) {
		t.Fatalf("received %v", kinds)
	}
}
