package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/deviceapi"
)

// ErrorStatus maps a koshin error code to its HTTP status: the one place
// where domain failures become HTTP.
func ErrorStatus(code string) int {
	switch code {
	case koshin.EINVALID:
		return http.StatusBadRequest
	case koshin.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case koshin.EFORBIDDEN:
		return http.StatusForbidden
	case koshin.ENOTFOUND:
		return http.StatusNotFound
	case koshin.ECONFLICT:
		return http.StatusConflict
	case koshin.ETOOMANY:
		return http.StatusTooManyRequests
	case koshin.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case koshin.ENOTIMPLEMENTED:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

// retryError is a 429 or 503 with a Retry-After.
type retryError struct {
	err   *koshin.Error
	after time.Duration
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// retryLater builds an ETOOMANY or EUNAVAILABLE error carrying Retry-After.
func retryLater(code string, after time.Duration, msg string) error {
	return &retryError{err: koshin.Errorf(code, "%s", msg), after: after}
}

// writeError answers err: its status, Retry-After if any, and the
// caller-safe message. Internal errors are logged with their cause and
// answered with a generic message.
func writeError(w http.ResponseWriter, log *slog.Logger, r *http.Request, err error) {
	code := koshin.ErrorCode(err)
	status := ErrorStatus(code)
	if status == http.StatusInternalServerError {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	var re *retryError
	if errors.As(err, &re) {
		w.Header().Set("Retry-After", retryAfterSeconds(re.after))
	}
	writeJSON(w, status, deviceapi.ErrorBody{Error: koshin.ErrorMessage(err)})
}

// retryAfterSeconds rounds up to whole seconds, at least one.
func retryAfterSeconds(d time.Duration) string {
	s := int64(math.Ceil(d.Seconds()))
	return strconv.FormatInt(max(s, 1), 10)
}

// writeJSON writes v with status. Responses are never cached: they carry
// fleet state, tokens or signed per-request metadata.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.Encode(v) // a failed write means the client went away
}

// Generic answers for unauthenticated callers: they say what to do and
// nothing about the server (EN 303 645 5.6-2).
var (
	errNotFound       = koshin.Errorf(koshin.ENOTFOUND, "Not found.")
	errUnauthorized   = koshin.Errorf(koshin.EUNAUTHORIZED, "Authentication required.")
	errBadCredentials = koshin.Errorf(koshin.EUNAUTHORIZED, "Invalid name or password.")
	errForbidden      = koshin.Errorf(koshin.EFORBIDDEN, "Your role does not allow this.")
	errDeviceAuth     = koshin.Errorf(koshin.EUNAUTHORIZED, "A valid, current device certificate is required.")
)
