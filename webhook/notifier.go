package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/koshin-ota/koshin/rollout"
)

// Delivery defaults.
const (
	DefaultMaxAttempts = 3
	DefaultBackoff     = time.Second
	// maxBackoff caps one wait, including a receiver's Retry-After, so
	// that a delivery never holds the outbox for long; the outbox retries
	// later anyway.
	maxBackoff = 30 * time.Second
	// DefaultTimeout bounds one attempt when Client is nil.
	DefaultTimeout = 10 * time.Second
	// maxResponseDrain is how much of a response body is read (and
	// discarded) so the connection can be reused.
	maxResponseDrain = 4 << 10
)

// Notifier posts signed notifications to URL; it implements
// rollout.Notifier. Deliveries are retried a few times with exponential
// backoff on network errors, 408, 429 and 5xx; other answers fail at once.
// Redirects are refused: a signed body goes only where it was configured
// to go. Wrap it in a rollout.Outbox so that retries never block the
// engine.
type Notifier struct {
	// URL must be https, or http to a loopback address.
	URL string
	// Secret is shared with the receiver, at least MinSecretLen bytes,
	// from configuration.
	Secret []byte
	// Client sends requests; nil means one with DefaultTimeout.
	Client *http.Client
	Now    func() time.Time
	// MaxAttempts per Notify; 0 means DefaultMaxAttempts.
	MaxAttempts int
	// Backoff is the first wait between attempts, doubled after each;
	// 0 means DefaultBackoff.
	Backoff time.Duration
	// Sleep waits between attempts; nil means a timer that ctx cancels.
	Sleep func(ctx context.Context, d time.Duration) error
}

var _ rollout.Notifier = (*Notifier)(nil)

// Validate checks the configuration.
func (n *Notifier) Validate() error {
	if len(n.Secret) < MinSecretLen {
		return ErrSecret
	}
	u, err := url.Parse(n.URL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("webhook: URL %q is not an absolute URL", n.URL)
	}
	if u.Scheme == "https" || u.Scheme == "http" && isLoopback(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("webhook: URL must use https (http only to a loopback address)")
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Notify posts n as JSON.
func (n *Notifier) Notify(ctx context.Context, note rollout.Notification) error {
	body, err := json.Marshal(note)
	if err != nil {
		return fmt.Errorf("webhook: encode: %w", err)
	}
	return n.Send(ctx, body)
}

// Send posts body, signing each attempt afresh so that a retry after a
// wait is not refused as stale.
func (n *Notifier) Send(ctx context.Context, body []byte) error {
	if err := n.Validate(); err != nil {
		return err
	}
	if len(body) > MaxBodySize {
		return ErrTooLarge
	}
	attempts := max(n.MaxAttempts, 0)
	if attempts == 0 {
		attempts = DefaultMaxAttempts
	}
	var err error
	for i := range attempts {
		var wait time.Duration
		if wait, err = n.attempt(ctx, body); err == nil || wait < 0 || i == attempts-1 {
			break
		}
		if serr := n.sleep(ctx, max(wait, n.backoff(i))); serr != nil {
			return errors.Join(err, serr)
		}
	}
	return err
}

// attempt makes one request. wait < 0 means do not retry; otherwise it is
// the receiver's requested delay (0 if none).
func (n *Notifier) attempt(ctx context.Context, body []byte) (wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL, bytes.NewReader(body))
	if err != nil {
		return -1, fmt.Errorf("webhook: %w", err)
	}
	ts := n.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(TimestampHeader, strconv.FormatInt(ts, 10))
	req.Header.Set(SignatureHeader, Sign(n.Secret, ts, body))
	resp, err := n.client().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return -1, fmt.Errorf("webhook: %w", err)
		}
		return 0, fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseDrain))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return 0, nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("webhook: receiver answered %s", resp.Status)
	default:
		return -1, fmt.Errorf("webhook: receiver answered %s", resp.Status)
	}
}

// retryAfter reads a Retry-After in seconds, capped; dates and garbage
// count as absent.
func retryAfter(v string) time.Duration {
	s, err := strconv.Atoi(v)
	if err != nil || s <= 0 {
		return 0
	}
	return min(time.Duration(s)*time.Second, maxBackoff)
}

func (n *Notifier) backoff(i int) time.Duration {
	d := n.Backoff
	if d <= 0 {
		d = DefaultBackoff
	}
	for ; i > 0 && d < maxBackoff; i-- {
		d *= 2
	}
	return min(d, maxBackoff)
}

func (n *Notifier) client() *http.Client {
	c := http.Client{Timeout: DefaultTimeout}
	if n.Client != nil {
		c = *n.Client
	}
	// The 3xx itself comes back and fails the delivery without a retry.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func (n *Notifier) now() time.Time {
	if n.Now == nil {
		return time.Now()
	}
	return n.Now()
}

func (n *Notifier) sleep(ctx context.Context, d time.Duration) error {
	if n.Sleep != nil {
		return n.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
