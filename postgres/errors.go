package postgres

import (
	"context"
	"database/sql/driver"
	"errors"
	"math/rand/v2"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/koshin-ota/koshin"
)

// SQLSTATE codes the store reacts to (PostgreSQL Appendix A).
const (
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeCheckViolation       = "23514"
	codeNotNullViolation     = "23502"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeLockNotAvailable     = "55P03" // lock_timeout, NOWAIT
	codeQueryCanceled        = "57014" // statement_timeout, cancel request
	codeRaiseException       = "P0001" // RAISE EXCEPTION in the append-only triggers
)

// retryable reports whether PostgreSQL aborted the transaction for a reason
// that says nothing about the request, so running it again can succeed.
// Each of these rolls the whole transaction back, so a retry cannot apply
// anything twice. Connection failures are not retried here: a COMMIT whose
// answer was lost may have succeeded.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case codeSerializationFailure, codeDeadlockDetected, codeLockNotAvailable:
		return true
	}
	return false
}

// retry runs fn up to attempts times while it fails with a retryable error,
// sleeping with full-jitter exponential backoff (5 ms doubling, at most
// 200 ms) between attempts, and returns fn's last error through final.
func retry(ctx context.Context, attempts int, fn func() error, final func(error) error) error {
	backoff := 5 * time.Millisecond
	var err error
	for i := range max(attempts, 1) {
		if i > 0 {
			t := time.NewTimer(rand.N(backoff) + time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return final(err)
			case <-t.C:
			}
			backoff = min(2*backoff, 200*time.Millisecond)
		}
		if err = fn(); err == nil || !retryable(err) {
			break
		}
	}
	return final(err)
}

// mapError turns driver errors into domain errors: constraint violations
// are conflicts or invalid input, contention and connection trouble mean
// "try again", anything else is internal.
func mapError(err error) error {
	var ke *koshin.Error
	var pe *pgconn.PgError
	switch {
	case err == nil || errors.As(err, &ke):
		return err
	case errors.As(err, &pe):
		return mapPgError(pe, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &koshin.Error{Code: koshin.EUNAVAILABLE, Message: "The request was cancelled or timed out.", Err: err}
	case unreachable(err):
		return &koshin.Error{Code: koshin.EUNAVAILABLE, Message: "The database is unreachable; try again.", Err: err}
	}
	return koshin.Internal(err)
}

func mapPgError(pe *pgconn.PgError, err error) error {
	switch pe.Code {
	case codeUniqueViolation:
		return &koshin.Error{Code: koshin.ECONFLICT, Message: "Already exists.", Err: err}
	case codeForeignKeyViolation:
		return &koshin.Error{Code: koshin.ECONFLICT, Message: "Refers to something that does not exist.", Err: err}
	case codeRaiseException:
		return &koshin.Error{Code: koshin.EFORBIDDEN, Message: "History is append-only.", Err: err}
	case codeCheckViolation, codeNotNullViolation:
		return &koshin.Error{Code: koshin.EINVALID, Message: "Invalid value.", Err: err}
	case codeSerializationFailure, codeDeadlockDetected, codeLockNotAvailable, codeQueryCanceled:
		return &koshin.Error{Code: koshin.EUNAVAILABLE, Message: "The database is busy; try again.", Err: err}
	}
	switch pe.Code[:2] {
	case "22": // data exception: NUL byte or invalid UTF-8 in text, out-of-range number
		return &koshin.Error{Code: koshin.EINVALID, Message: "Invalid value.", Err: err}
	case "08", "53", "57": // connection exception, insufficient resources, operator intervention
		return &koshin.Error{Code: koshin.EUNAVAILABLE, Message: "The database is unavailable; try again.", Err: err}
	}
	return koshin.Internal(err)
}

// unreachable reports whether err means the server could not be reached or
// the connection broke, rather than that a statement failed.
func unreachable(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) || pgconn.Timeout(err)
}
