package deviceapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/deviceapi"
)

func TestSignReport(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, ed, _ := ed25519.GenerateKey(rand.Reader)
	r := deviceapi.Report{DeviceID: "d", HardwareID: strings.Repeat("h", 8)}
	ci, err := deviceapi.SignReport(ec, r)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(ci.Report)
	if !ecdsa.VerifyASN1(&ec.PublicKey, sum[:], ci.Signature) {
		t.Fatal("ECDSA signature does not verify over SHA-256 of the report bytes")
	}
	ci, _ = deviceapi.SignReport(ed, r)
	if !ed25519.Verify(pub, ci.Report, ci.Signature) {
		t.Fatal("Ed25519 signature does not verify over the report bytes")
	}
}

// fakeServer answers with the given statuses in turn, then 200 with body.
func fakeServer(t *testing.T, body string, statuses ...int) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i < len(statuses) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(statuses[i])
			w.Write([]byte(`{"error":"slow down"}`))
			return
		}
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestRetryAfter(t *testing.T) {
	srv, calls := fakeServer(t, `{"poll_interval":60,"poll_jitter":10}`, 429, 503)
	c := deviceapi.NewClient(srv.URL, srv.Client())
	var slept []time.Duration
	c.Sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	resp, err := c.CheckIn(context.Background(), deviceapi.CheckIn{Report: []byte(`{}`), Signature: []byte{1}})
	if err != nil || resp.PollInterval != 60 {
		t.Fatalf("%+v %v", resp, err)
	}
	if calls.Load() != 3 || len(slept) != 2 {
		t.Fatalf("calls %d, sleeps %v", calls.Load(), slept)
	}
	for _, d := range slept {
		if d < 7*time.Second {
			t.Errorf("waited %v, less than Retry-After", d)
		}
	}
}

func TestNoRetryOnClientError(t *testing.T) {
	srv, calls := fakeServer(t, `{}`, 400)
	c := deviceapi.NewClient(srv.URL, srv.Client())
	c.Sleep = func(context.Context, time.Duration) error { t.Fatal("slept on 400"); return nil }
	err := c.Events(context.Background(), deviceapi.EventBatch{})
	var se *deviceapi.StatusError
	if !errors.As(err, &se) || se.Code != 400 || se.Message != "slow down" || calls.Load() != 1 {
		t.Fatalf("err %v, calls %d", err, calls.Load())
	}
}

func TestGivesUp(t *testing.T) {
	srv, calls := fakeServer(t, `{}`, 503, 503, 503, 503, 503, 503)
	c := deviceapi.NewClient(srv.URL, srv.Client())
	c.Attempts = 3
	c.Sleep = func(context.Context, time.Duration) error { return nil }
	err := c.Events(context.Background(), deviceapi.EventBatch{})
	var se *deviceapi.StatusError
	if !errors.As(err, &se) || !se.Temporary() || calls.Load() != 3 {
		t.Fatalf("err %v, calls %d", err, calls.Load())
	}
}

func TestOversizedAnswer(t *testing.T) {
	srv, _ := fakeServer(t, `{"device_id":"`+strings.Repeat("x", deviceapi.MaxResponseBody)+`"}`)
	c := deviceapi.NewClient(srv.URL, srv.Client())
	if _, err := c.Enroll(context.Background(), deviceapi.EnrollRequest{}); err == nil {
		t.Fatal("oversized answer accepted")
	}
}

func TestInvalidCheckInAnswer(t *testing.T) {
	srv, _ := fakeServer(t, `{"poll_interval":1}`)
	c := deviceapi.NewClient(srv.URL, srv.Client())
	if _, err := c.CheckIn(context.Background(), deviceapi.CheckIn{}); err == nil {
		t.Fatal("out-of-range poll interval accepted")
	}
}
