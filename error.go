package koshin

import (
	"errors"
	"fmt"
)

// Error codes. Every service returns errors carrying one of these so that a
// single function in httpapi can map them to HTTP statuses, and so that the
// CLI and the rollout engine can react to classes of failure without parsing
// text.
const (
	ECONFLICT       = "conflict"        // uniqueness or state-machine violation
	EINTERNAL       = "internal"        // a bug or an unexpected backend failure
	EINVALID        = "invalid"         // input failed validation (EN 303 645 5.13-1)
	ENOTFOUND       = "not_found"       // the entity does not exist
	EUNAUTHORIZED   = "unauthorized"    // credentials missing, wrong, used or expired
	EFORBIDDEN      = "forbidden"       // authenticated but not allowed, or locked out
	ETOOMANY        = "too_many"        // the caller exceeded a rate or lockout limit
	EUNAVAILABLE    = "unavailable"     // the store is overloaded or busy; retry later
	ENOTIMPLEMENTED = "not_implemented" // a backend lacks this capability
)

// Error is the domain error. Message is safe to show to the caller: it never
// contains secrets, SQL or stack details. Err, when set, is the underlying
// cause for logs only.
type Error struct {
	Code    string
	Message string
	Err     error
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("koshin error: code=%s message=%s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("koshin error: code=%s message=%s", e.Code, e.Message)
}

// Unwrap exposes the cause to errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code and a formatted, caller-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Internal wraps an unexpected failure. The caller sees only a generic
// message; the cause stays available for logging.
func Internal(err error) *Error {
	return &Error{Code: EINTERNAL, Message: "Internal error.", Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, "" for a nil
// error and EINTERNAL for any other error.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the caller-safe message of the first *Error in err's
// chain, "" for a nil error and a generic message for any other error, so
// that internal details never reach a device or an operator's browser.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
