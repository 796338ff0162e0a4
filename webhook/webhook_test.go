package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/rollout"
	"github.com/koshin-ota/koshin/webhook"
)

var (
	secret = bytes.Repeat([]byte("k"), webhook.MinSecretLen)
	t0     = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	note   = rollout.Notification{
		ID: "rollout-1-halt", Kind: rollout.KindHalted, Time: t0, RolloutID: 1, Phase: 1,
		ReleaseName: "board/fw-2.0.0.img", Count: 15, Reason: "phase 1: 3 devices failed (threshold 3)",
	}
)

// captured is what a test receiver saw.
type captured struct {
	header http.Header
	body   []byte
}

// receiver verifies every request as a real receiver would, at now, and
// answers with the statuses in codes (200 once they run out).
type receiver struct {
	mu    sync.Mutex
	now   time.Time
	codes []int
	seen  []captured
	errs  []error
}

func (rv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	body, err := webhook.ReadRequest(r, secret, rv.now, 0)
	rv.errs = append(rv.errs, err)
	rv.seen = append(rv.seen, captured{r.Header.Clone(), body})
	code := http.StatusOK
	if err != nil {
		code = http.StatusUnauthorized
	} else if len(rv.codes) > 0 {
		code, rv.codes = rv.codes[0], rv.codes[1:]
	}
	w.WriteHeader(code)
}

func newNotifier(url string) (*webhook.Notifier, *[]time.Duration) {
	var sleeps []time.Duration
	return &webhook.Notifier{
		URL: url, Secret: secret, Now: func() time.Time { return t0 },
		Sleep: func(_ context.Context, d time.Duration) error { sleeps = append(sleeps, d); return nil },
	}, &sleeps
}

// TestReceiverVerifies: a delivery carries the timestamp and a v1
// signature the receiver accepts, and the notification decodes intact.
func TestReceiverVerifies(t *testing.T) {
	rv := &receiver{now: t0.Add(30 * time.Second)}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	n, _ := newNotifier(srv.URL)
	if err := n.Notify(t.Context(), note); err != nil {
		t.Fatal(err)
	}
	if len(rv.seen) != 1 || rv.errs[0] != nil {
		t.Fatalf("receiver saw %d requests, errors %v", len(rv.seen), rv.errs)
	}
	h := rv.seen[0].header
	if h.Get(webhook.TimestampHeader) != strconv.FormatInt(t0.Unix(), 10) {
		t.Fatalf("timestamp header %q", h.Get(webhook.TimestampHeader))
	}
	if got, want := h.Get(webhook.SignatureHeader), webhook.Sign(secret, t0.Unix(), rv.seen[0].body); got != want {
		t.Fatalf("signature header %q, want %q", got, want)
	}
	var got rollout.Notification
	if err := json.Unmarshal(rv.seen[0].body, &got); err != nil || got != note {
		t.Fatalf("decoded %+v (%v), want %+v", got, err, note)
	}
}

// sample returns headers and a body signed at t0.
func sample() (http.Header, []byte) {
	body, _ := json.Marshal(note)
	h := http.Header{}
	h.Set(webhook.TimestampHeader, strconv.FormatInt(t0.Unix(), 10))
	h.Set(webhook.SignatureHeader, webhook.Sign(secret, t0.Unix(), body))
	return h, body
}

// TestVerifyRefuses: replays outside the tolerance, tampered bodies,
// moved timestamps, wrong secrets and malformed headers are refused with
// distinguishable errors.
func TestVerifyRefuses(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(h http.Header, body []byte) ([]byte, time.Time, []byte)
		want   error
	}{
		{"genuine", func(h http.Header, b []byte) ([]byte, time.Time, []byte) { return b, t0, secret }, nil},
		{"replayed 10 minutes later", func(h http.Header, b []byte) ([]byte, time.Time, []byte) {
			return b, t0.Add(10 * time.Minute), secret
		}, webhook.ErrTimestamp},
		{"from the future", func(h http.Header, b []byte) ([]byte, time.Time, []byte) {
			return b, t0.Add(-10 * time.Minute), secret
		}, webhook.ErrTimestamp},
		{"tampered body", func(h http.Header, b []byte) ([]byte, time.Time, []byte) {
			return bytes.Replace(b, []byte(`"count":15`), []byte(`"count":0`), 1), t0, secret
		}, webhook.ErrSignature},
		{"timestamp moved forward", func(h http.Header, b []byte) ([]byte, time.Time, []byte) {
			h.Set(webhook.TimestampHeader, strconv.FormatInt(t0.Unix()+600, 10))
			return b, t0.Add(10 * time.Minute), secret
		}, webhook.ErrSignature},
		{"wrong secret", func(h http.Header, b []byte) ([]byte, time.Time, []byte) {
			return b, t0, bytes.Repeat([]byte("x"), webhook.MinSecretLen)
		}, webhook.ErrSignature},
		{"short secret", func(h http.Header, b []byte) ([]byte, time.Time, []byte) { return b, t0, secret[:16] }, webhook.ErrSecret},
		{"no signature", func(h http.Header, b []byte) ([]byte, time.Time, []byte) {
			h.Del(webhook.SignatureHeader)
			return b, t0, secret
		}, webhook.ErrMalformed},
		{"signed timestamp negative", func(h http.Header, b []byte) ([]byte, time.Time, []byte) {
			h.Set(webhook.TimestampHeader, "-1")
			return b, t0, secret
		}, webhook.ErrMalformed},
		{"only unknown schemes", func(h http.Header, b []byte) ([]byte, time.Time, []byte) {
			h.Set(webhook.SignatureHeader, "v2=abcd")
			return b, t0, secret
		}, webhook.ErrMalformed},
		{"rotation: second signature matches", func(h http.Header, b []byte) ([]byte, time.Time, []byte) {
			other := webhook.Sign(bytes.Repeat([]byte("o"), 32), t0.Unix(), b)
			h.Set(webhook.SignatureHeader, other+", "+h.Get(webhook.SignatureHeader))
			return b, t0, secret
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, body := sample()
			body, now, key := tt.mutate(h, body)
			err := webhook.Verify(key, h, body, now, 5*time.Minute)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestReplayedRequestRefused: a request captured on the wire and sent
// again after the tolerance is refused by the receiver.
func TestReplayedRequestRefused(t *testing.T) {
	rv := &receiver{now: t0}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	n, _ := newNotifier(srv.URL)
	if err := n.Notify(t.Context(), note); err != nil {
		t.Fatal(err)
	}
	rv.mu.Lock()
	first := rv.seen[0]
	rv.now = t0.Add(time.Hour)
	rv.mu.Unlock()
	req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(first.body))
	req.Header = first.header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !errors.Is(rv.errs[1], webhook.ErrTimestamp) {
		t.Fatalf("replay answered %d with %v", resp.StatusCode, rv.errs[1])
	}
}

// TestRetries: transient answers are retried with growing waits (or the
// receiver's Retry-After), permanent ones are not, and attempts are bounded.
func TestRetries(t *testing.T) {
	tests := []struct {
		name       string
		codes      []int
		retryAfter string
		wantErr    bool
		wantCalls  int
		wantSleeps []time.Duration
	}{
		{"ok", nil, "", false, 1, nil},
		{"503 then ok", []int{503, 503}, "", false, 3, []time.Duration{time.Second, 2 * time.Second}},
		{"always 500", []int{500, 500, 500, 500}, "", true, 3, []time.Duration{time.Second, 2 * time.Second}},
		{"400 is final", []int{400}, "", true, 1, nil},
		{"redirect is final", []int{307}, "", true, 1, nil},
		{"429 honours Retry-After", []int{429}, "7", false, 2, []time.Duration{7 * time.Second}},
		{"Retry-After is capped", []int{503}, "86400", false, 2, []time.Duration{30 * time.Second}},
		{"Retry-After date ignored", []int{503}, "Wed, 21 Oct 2026 07:28:00 GMT", false, 2, []time.Duration{time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rv := &receiver{now: t0, codes: tt.codes}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.Header().Set("Location", "https://elsewhere.example/")
				rv.ServeHTTP(w, r)
			}))
			defer srv.Close()
			n, sleeps := newNotifier(srv.URL)
			err := n.Notify(t.Context(), note)
			if (err != nil) != tt.wantErr || len(rv.seen) != tt.wantCalls {
				t.Fatalf("Notify = %v after %d calls; want error=%v after %d", err, len(rv.seen), tt.wantErr, tt.wantCalls)
			}
			if !slices.Equal(*sleeps, tt.wantSleeps) {
				t.Fatalf("slept %v, want %v", *sleeps, tt.wantSleeps)
			}
		})
	}
}

// TestNetworkErrorRetried: an unreachable receiver is retried, then the
// error is returned for the outbox to retry later.
func TestNetworkErrorRetried(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	n, sleeps := newNotifier(url)
	if err := n.Notify(t.Context(), note); err == nil || len(*sleeps) != 2 {
		t.Fatalf("Notify = %v after sleeps %v; want an error after 2 retries", err, *sleeps)
	}
}

// TestConfigRequired: no default secret, no plain http to remote hosts;
// a bad configuration sends nothing.
func TestConfigRequired(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls++ }))
	defer srv.Close()
	for _, n := range []*webhook.Notifier{
		{URL: srv.URL},
		{URL: srv.URL, Secret: secret[:31]},
		{URL: "http://hooks.example.com/koshin", Secret: secret},
		{URL: "ftp://127.0.0.1/", Secret: secret},
		{URL: "/relative", Secret: secret},
	} {
		if err := n.Notify(t.Context(), note); err == nil {
			t.Errorf("%+v: Notify succeeded", n)
		}
	}
	ok := webhook.Notifier{URL: "https://hooks.example.com/koshin", Secret: secret}
	if err := ok.Validate(); err != nil {
		t.Errorf("https URL refused: %v", err)
	}
	if calls != 0 {
		t.Fatalf("%d requests sent with a bad configuration", calls)
	}
}

// TestBodyLimits: neither side handles bodies over MaxBodySize.
func TestBodyLimits(t *testing.T) {
	rv := &receiver{now: t0}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	n, _ := newNotifier(srv.URL)
	big := bytes.Repeat([]byte("a"), webhook.MaxBodySize+1)
	if err := n.Send(t.Context(), big); !errors.Is(err, webhook.ErrTooLarge) {
		t.Fatalf("Send(big) = %v", err)
	}
	req := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(bytes.NewReader(big)))
	req.Header.Set(webhook.TimestampHeader, strconv.FormatInt(t0.Unix(), 10))
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(secret, t0.Unix(), big))
	if _, err := webhook.ReadRequest(req, secret, t0, 0); !errors.Is(err, webhook.ErrTooLarge) {
		t.Fatalf("ReadRequest(big) = %v", err)
	}
}

// TestThroughOutbox: wrapped in a rollout.Outbox, a notification the
// receiver refuses at first is delivered, signed, on a later flush.
func TestThroughOutbox(t *testing.T) {
	rv := &receiver{now: t0, codes: []int{503, 503, 503}}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	n, _ := newNotifier(srv.URL)
	now := t0
	o := &rollout.Outbox{Notifier: n, Now: func() time.Time { return now }, Backoff: time.Minute, Log: slog.New(slog.DiscardHandler)}
	o.Notify(t.Context(), note)
	if got := o.Flush(t.Context()); got != 0 || o.Len() != 1 {
		t.Fatalf("first flush delivered %d, %d queued", got, o.Len())
	}
	now = now.Add(time.Minute)
	if got := o.Flush(t.Context()); got != 1 || o.Len() != 0 {
		t.Fatalf("second flush delivered %d, %d queued", got, o.Len())
	}
	if len(rv.seen) != 4 || rv.errs[3] != nil {
		t.Fatalf("receiver saw %d requests, last error %v", len(rv.seen), rv.errs[len(rv.errs)-1])
	}
}
