package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/minio/minio-go/v7"

	"github.com/koshin-ota/koshin"
)

// authCodes are S3 error codes that mean the configured credentials, their
// permissions or the signing setup are wrong: a deployment fault that
// retrying will not fix.
var authCodes = map[string]bool{
	"AccessDenied":                 true,
	"InvalidAccessKeyId":           true,
	"SignatureDoesNotMatch":        true,
	"ExpiredToken":                 true,
	"InvalidToken":                 true,
	"TokenRefreshRequired":         true,
	"AuthorizationHeaderMalformed": true, // typically the wrong region
	"RequestTimeTooSkewed":         true,
	"InvalidSecurity":              true,
	"AllAccessDisabled":            true,
	"AccountProblem":               true,
	"XAdminUserNotFound":           true, // versitygw: unknown access key (HTTP 404)
}

// busyCodes are S3 error codes that mean "try again later".
var busyCodes = map[string]bool{
	"SlowDown":           true,
	"ServiceUnavailable": true,
	"InternalError":      true,
	"RequestTimeout":     true,
	"OperationAborted":   true,
}

// fail maps a minio-go error to a koshin error. The message names the blob
// (a validated name) and the S3 error code, never the endpoint, keys or
// the server's text; the whole cause stays in Err for logs and the CLI.
func (s *Store) fail(op, name string, err error) error {
	resp := minio.ToErrorResponse(err)
	cause := fmt.Errorf("s3 %s %s/%s%s at %s: %w", op, s.cfg.Bucket, s.cfg.Prefix, name, s.cfg.Endpoint, err)
	if resp.Code != "" {
		cause = fmt.Errorf("s3 %s %s/%s%s at %s: %s (HTTP %d): %w", op, s.cfg.Bucket, s.cfg.Prefix, name, s.cfg.Endpoint, resp.Code, resp.StatusCode, err)
	}
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &koshin.Error{Code: koshin.EUNAVAILABLE, Message: "The object storage request was cancelled or timed out.", Err: cause}
	case resp.Code == minio.NoSuchKey || resp.Code == "NotFound":
		return &koshin.Error{Code: koshin.ENOTFOUND, Message: fmt.Sprintf("Blob %q not found.", name), Err: cause}
	case resp.Code == minio.NoSuchBucket:
		return &koshin.Error{Code: koshin.EINTERNAL, Message: "The object storage bucket does not exist.", Err: cause}
	case authCodes[resp.Code] || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized:
		return &koshin.Error{Code: koshin.EINTERNAL, Message: fmt.Sprintf("Object storage refused the configured credentials (%s).", safeCode(resp.Code)), Err: cause}
	case busyCodes[resp.Code] || resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return &koshin.Error{Code: koshin.EUNAVAILABLE, Message: "Object storage is unavailable; try again later.", Err: cause}
	case errors.As(err, &netErr), errors.Is(err, io.ErrUnexpectedEOF):
		return &koshin.Error{Code: koshin.EUNAVAILABLE, Message: "Object storage is unreachable; try again later.", Err: cause}
	}
	return &koshin.Error{Code: koshin.EINTERNAL, Message: fmt.Sprintf("The object storage request failed (%s).", safeCode(resp.Code)), Err: cause}
}

// safeCode keeps an S3 error code for a message only if it looks like one
// (a short CamelCase word), so nothing a server made up reaches a caller.
func safeCode(code string) string {
	if code == "" || len(code) > 64 {
		return "no error code"
	}
	for i := 0; i < len(code); i++ {
		if !isAlnum(code[i]) {
			return "no error code"
		}
	}
	return code
}

// errUnexpectedEnd: the stream ended before the announced size.
var errUnexpectedEnd = errors.New("blob content ended before its announced size")

// lengthError: the stream went on past the announced size.
type lengthError struct{}

func (*lengthError) Error() string { return "blob content is longer than its announced size" }

func (*lengthError) msg(size int64) string {
	return fmt.Sprintf("the content is longer than the announced %d bytes", size)
}

// readError marks a failure of the caller's reader, as opposed to the
// network or the server.
type readError struct{ err error }

func (e *readError) Error() string { return "read blob content: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// exactReader passes on exactly remaining bytes and fails the upload if the
// stream is shorter or longer. minio-go and net/http stop reading once they
// have the announced size, and io.ReadFull drops an error that comes with
// the last bytes, so the check for excess data happens before the last
// bytes are handed over: Read then returns no data and the error, and the
// upload is aborted rather than completed with a truncated blob.
type exactReader struct {
	r         io.Reader
	remaining int64
	err       error // sticky
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.remaining == 0 {
		e.err = e.checkEnd()
		if e.err == nil {
			e.err = io.EOF
		}
		return 0, e.err
	}
	if int64(len(p)) > e.remaining {
		p = p[:e.remaining]
	}
	n, err := e.r.Read(p)
	e.remaining -= int64(n)
	switch {
	case err == io.EOF && e.remaining > 0:
		e.err = errUnexpectedEnd
		return n, e.err
	case err != nil && err != io.EOF:
		e.err = &readError{err}
		return n, e.err
	case e.remaining == 0:
		if e.err = e.checkEnd(); e.err != nil {
			return 0, e.err
		}
		e.err = io.EOF
		return n, nil
	}
	return n, nil
}

// checkEnd reads one byte past the announced size: there must be none.
func (e *exactReader) checkEnd() error {
	var b [1]byte
	for range 100 { // readers may return 0, nil a few times
		n, err := e.r.Read(b[:])
		switch {
		case n > 0:
			return &lengthError{}
		case err == io.EOF:
			return nil
		case err != nil:
			return &readError{err}
		}
	}
	return &readError{io.ErrNoProgress}
}

// streamReader marks errors of a stream of unknown size as the caller's.
type streamReader struct{ r io.Reader }

func (c streamReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		err = &readError{err}
	}
	return n, err
}
