package deviceapi

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrorBody is the JSON body of every error answer of the device API. The
// message says what was wrong with the request and nothing about the
// server (EN 303 645 5.6-2).
type ErrorBody struct {
	Error string `json:"error"`
}

// StatusError is an error answer from the server.
type StatusError struct {
	Code    int
	Message string
	// RetryAfter is the server's Retry-After for 429 and 503 answers.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("device api: %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// Temporary reports whether retrying later may succeed.
func (e *StatusError) Temporary() bool {
	return e.Code == http.StatusTooManyRequests || e.Code == http.StatusServiceUnavailable
}

// Client defaults.
const (
	DefaultAttempts   = 5
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = 5 * time.Minute
	// maxRetryAfter caps a server's Retry-After so that a misconfigured or
	// hostile answer cannot park a device for days.
	maxRetryAfter = time.Hour
)

// Client calls device API v1. Its HTTP client carries the TLS
// configuration: the pinned server CA, and after enrollment the device
// certificate. Calls that fail with 429, 503 or a transport error are
// retried up to Attempts times with exponential backoff and full jitter,
// waiting at least the server's Retry-After (EN 303 645 5.9-3). Every call
// is safe to retry: the server stores an event ID once, and re-enrolling an
// enrolled key re-issues its certificate.
type Client struct {
	BaseURL    string
	HTTP       *http.Client
	Attempts   int           // 0 means DefaultAttempts
	Backoff    time.Duration // 0 means DefaultBackoff
	MaxBackoff time.Duration // 0 means DefaultMaxBackoff
	// Sleep waits d or until ctx ends; tests replace it to avoid real waits.
	Sleep func(ctx context.Context, d time.Duration) error
}

// NewClient returns a client for baseURL using hc.
func NewClient(baseURL string, hc *http.Client) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), HTTP: hc}
}

// Enroll asks for a device certificate (CCDS HLC04/05). Sent again for a key
// the server has enrolled, it renews the certificate, which is also how a
// device recovers from a lost answer or an expired certificate.
func (c *Client) Enroll(ctx context.Context, req EnrollRequest) (EnrollResponse, error) {
	var resp EnrollResponse
	err := c.call(ctx, PathEnroll, req, &resp)
	return resp, err
}

// CheckIn sends a signed report (see SignReport) and returns the validated
// answer.
func (c *Client) CheckIn(ctx context.Context, ci CheckIn) (CheckInResponse, error) {
	var resp CheckInResponse
	if err := c.call(ctx, PathCheckIn, ci, &resp); err != nil {
		return resp, err
	}
	return resp, resp.Validate()
}

// Report signs r with the device key and checks in with nonce.
func (c *Client) Report(ctx context.Context, key crypto.Signer, r Report, nonce string) (CheckInResponse, error) {
	ci, err := SignReport(key, r)
	if err != nil {
		return CheckInResponse{}, err
	}
	ci.Nonce = nonce
	return c.CheckIn(ctx, ci)
}

// Events delivers a batch of events.
func (c *Client) Events(ctx context.Context, b EventBatch) error {
	var resp EventsResponse
	return c.call(ctx, PathEvents, b, &resp)
}

// SignReport encodes r and signs the bytes with key: Ed25519 signs them
// directly, ECDSA signs their SHA-256 (ASN.1 signature). The caller sets
// the check-in's Nonce, fresh for every check-in.
func SignReport(key crypto.Signer, r Report) (CheckIn, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return CheckIn{}, err
	}
	var sig []byte
	if _, ok := key.Public().(ed25519.PublicKey); ok {
		sig, err = key.Sign(rand.Reader, body, crypto.Hash(0))
	} else {
		sum := sha256.Sum256(body)
		sig, err = key.Sign(rand.Reader, sum[:], crypto.SHA256)
	}
	if err != nil {
		return CheckIn{}, fmt.Errorf("sign report: %w", err)
	}
	return CheckIn{Report: body, Signature: sig}, nil
}

// call POSTs in as JSON to path and decodes the answer into out, retrying
// temporary failures.
func (c *Client) call(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	attempts := c.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	for i := 0; ; i++ {
		err = c.once(ctx, path, body, out)
		if err == nil || i+1 >= attempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
		if serr := c.sleep(ctx, c.delay(i, err)); serr != nil {
			return err
		}
	}
}

func retryable(err error) bool {
	var se *StatusError
	var pe *protocolError
	switch {
	case errors.As(err, &se):
		return se.Temporary()
	case errors.As(err, &pe):
		return false // the same answer would come again
	}
	return true // transport errors: the server may never have seen the request
}

// protocolError is an answer the client cannot use.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "device api: " + e.msg }

// delay is full jitter over an exponential ceiling, but never less than the
// server's Retry-After.
func (c *Client) delay(attempt int, err error) time.Duration {
	base, ceil := c.Backoff, c.MaxBackoff
	if base <= 0 {
		base = DefaultBackoff
	}
	if ceil <= 0 {
		ceil = DefaultMaxBackoff
	}
	d := base
	for j := 0; j < attempt && d < ceil; j++ {
		d *= 2
	}
	d = time.Duration(mrand.Int64N(int64(min(d, ceil)) + 1))
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > d {
		d = se.RetryAfter
	}
	return d
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
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

func (c *Client) once(ctx context.Context, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody+1))
	if err != nil {
		return err
	}
	if len(data) > MaxResponseBody {
		return &protocolError{fmt.Sprintf("answer larger than %d bytes", MaxResponseBody)}
	}
	if resp.StatusCode != http.StatusOK {
		return statusError(resp, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &protocolError{"decode answer: " + err.Error()}
	}
	return nil
}

func statusError(resp *http.Response, data []byte) *StatusError {
	se := &StatusError{Code: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
	var eb ErrorBody
	if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
		se.Message = eb.Error
	} else {
		se.Message = http.StatusText(resp.StatusCode)
	}
	if len(se.Message) > maxText {
		se.Message = se.Message[:maxText]
	}
	return se
}

// parseRetryAfter reads delay-seconds; the HTTP-date form needs a trusted
// clock, which devices may lack, so it is ignored and the backoff applies.
func parseRetryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(min(n, int(maxRetryAfter/time.Second))) * time.Second
}
