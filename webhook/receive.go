package webhook

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// MaxBodySize bounds a notification body, sent or received.
const MaxBodySize = 64 << 10

// ErrTooLarge says a body exceeded MaxBodySize.
var ErrTooLarge = errors.New("webhook: body larger than 64 KiB")

// ReadRequest reads at most MaxBodySize bytes of r's body and verifies it
// as Verify does; only a verified body is returned. Receivers written in
// Go can use it as the first step of their handler.
func ReadRequest(r *http.Request, secret []byte, now time.Time, tolerance time.Duration) ([]byte, error) {
	if r.Method != http.MethodPost {
		return nil, fmt.Errorf("%w: method %s", ErrMalformed, r.Method)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodySize+1))
	if err != nil {
		return nil, fmt.Errorf("webhook: read body: %w", err)
	}
	if len(body) > MaxBodySize {
		return nil, ErrTooLarge
	}
	if err := Verify(secret, r.Header, body, now, tolerance); err != nil {
		return nil, err
	}
	return body, nil
}
