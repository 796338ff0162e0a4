package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/koshin-ota/koshin"
)

func pgErr(code string) error {
	return fmt.Errorf("exec: %w", &pgconn.PgError{Code: code, Message: "test"})
}

func TestMapError(t *testing.T) {
	tests := []struct {
		err  error
		code string
	}{
		{nil, ""},
		{pgErr(codeUniqueViolation), koshin.ECONFLICT},
		{pgErr(codeForeignKeyViolation), koshin.ECONFLICT},
		{pgErr(codeCheckViolation), koshin.EINVALID},
		{pgErr(codeNotNullViolation), koshin.EINVALID},
		{pgErr("22021"), koshin.EINVALID}, // invalid byte sequence (NUL, bad UTF-8)
		{pgErr("22003"), koshin.EINVALID}, // numeric value out of range
		{pgErr(codeRaiseException), koshin.EFORBIDDEN},
		{pgErr(codeSerializationFailure), koshin.EUNAVAILABLE},
		{pgErr(codeDeadlockDetected), koshin.EUNAVAILABLE},
		{pgErr(codeLockNotAvailable), koshin.EUNAVAILABLE},
		{pgErr(codeQueryCanceled), koshin.EUNAVAILABLE},
		{pgErr("57P01"), koshin.EUNAVAILABLE}, // admin shutdown
		{pgErr("53300"), koshin.EUNAVAILABLE}, // too many connections
		{pgErr("08006"), koshin.EUNAVAILABLE}, // connection failure
		{pgErr("42P01"), koshin.EINTERNAL},    // undefined table: a bug
		{context.DeadlineExceeded, koshin.EUNAVAILABLE},
		{sql.ErrConnDone, koshin.EINTERNAL},
		{koshin.Errorf(koshin.ENOTFOUND, "x"), koshin.ENOTFOUND},
	}
	for _, tt := range tests {
		got := mapError(tt.err)
		if code := koshin.ErrorCode(got); code != tt.code {
			t.Errorf("mapError(%v) code = %q, want %q", tt.err, code, tt.code)
		}
		if tt.err != nil && !errors.Is(got, tt.err) && koshin.ErrorCode(tt.err) == "" {
			t.Errorf("mapError(%v) lost the cause", tt.err)
		}
		if msg := koshin.ErrorMessage(got); tt.err != nil && msg == "" {
			t.Errorf("mapError(%v) has no message", tt.err)
		}
	}
	ke := koshin.Errorf(koshin.ENOTFOUND, "x")
	if mapError(ke) != ke {
		t.Fatal("domain error rewrapped")
	}
}

// TestRetry: contention aborts are retried up to the limit, other errors
// are not, and a mapped domain error that wraps a contention abort (as
// notFound and collect produce inside a transaction) is still recognised.
func TestRetry(t *testing.T) {
	ctx := context.Background()
	failing := func(codes ...string) (func() error, *int) {
		calls := 0
		return func() error {
			calls++
			if calls <= len(codes) {
				return pgErr(codes[calls-1])
			}
			return nil
		}, &calls
	}
	fn, calls := failing(codeSerializationFailure, codeDeadlockDetected, codeLockNotAvailable)
	if err := retry(ctx, 5, fn, mapError); err != nil || *calls != 4 {
		t.Fatalf("transient aborts: err %v after %d calls, want success after 4", err, *calls)
	}
	fn, calls = failing(codeLockNotAvailable, codeLockNotAvailable, codeLockNotAvailable)
	if err := retry(ctx, 3, fn, mapError); koshin.ErrorCode(err) != koshin.EUNAVAILABLE || *calls != 3 {
		t.Fatalf("persistent aborts: %v after %d calls, want EUNAVAILABLE after 3", err, *calls)
	}
	fn, calls = failing(codeUniqueViolation)
	if err := retry(ctx, 5, fn, mapError); koshin.ErrorCode(err) != koshin.ECONFLICT || *calls != 1 {
		t.Fatalf("conflict: %v after %d calls, want ECONFLICT at once", err, *calls)
	}
	calls2 := 0
	wrapped := func() error {
		calls2++
		if calls2 == 1 {
			return mapError(pgErr(codeDeadlockDetected))
		}
		return nil
	}
	if err := retry(ctx, 5, wrapped, mapError); err != nil || calls2 != 2 {
		t.Fatalf("mapped abort: %v after %d calls", err, calls2)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	start := time.Now()
	fn, calls = failing(codeSerializationFailure, codeSerializationFailure)
	if err := retry(cctx, 100, fn, mapError); err == nil || *calls != 1 || time.Since(start) > time.Second {
		t.Fatalf("cancelled: %v after %d calls", err, *calls)
	}
}

func TestLockKey(t *testing.T) {
	if LockKey("koshin/rollout-engine") == LockKey("koshin/expiry") {
		t.Fatal("distinct names, same key")
	}
	if LockKey("a") != LockKey("a") {
		t.Fatal("LockKey is not deterministic")
	}
}
