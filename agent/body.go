package agent

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/koshin-ota/koshin/trust"
)

// ErrFetch marks a download that could not be continued after the
// configured number of reconnects. The transaction stays in downloading and
// the next poll resumes it from the last checkpoint.
var ErrFetch = errors.New("agent: download interrupted")

// body is the payload's byte stream from offset to the signed length. A
// dropped connection or a body that ends early is reopened at the current
// offset (HTTP Range) after a delay, so the verifier's reader above it sees
// one continuous stream and keeps its hash state. It never reads past the
// signed length: extra bytes a server sends are simply not read.
type body struct {
	ctx    context.Context
	e      *Engine
	url    string
	off    int64
	end    int64
	rc     io.ReadCloser
	failed int // consecutive failures without progress
}

func (e *Engine) newBody(ctx context.Context, t *Target, offset int64) *body {
	return &body{ctx: ctx, e: e, url: t.URL, off: offset, end: t.Length}
}

func (b *body) Read(p []byte) (int, error) {
	empty := 0
	for {
		if b.off >= b.end {
			return 0, io.EOF
		}
		if b.rc == nil {
			if err := b.open(); err != nil {
				return 0, err
			}
			continue
		}
		n, err := b.rc.Read(p[:min(int64(len(p)), b.end-b.off)])
		b.off += int64(n)
		if err != nil {
			b.rc.Close()
			b.rc = nil
		}
		if n > 0 {
			b.failed = 0
			return n, nil
		}
		if err == nil {
			if empty++; empty < 100 {
				continue
			}
			err = io.ErrNoProgress
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // short body: the length is signed
		}
		if rerr := b.retry(err); rerr != nil {
			return 0, rerr
		}
	}
}

func (b *body) open() error {
	rc, err := b.e.cfg.Fetcher.Open(b.ctx, b.url, b.off)
	if err != nil {
		if isRejection(err) {
			return err
		}
		return b.retry(err)
	}
	b.rc = rc
	return nil
}

// retry waits before the next reconnect or gives up after FetchRetries
// consecutive failures.
func (b *body) retry(cause error) error {
	if b.ctx.Err() != nil {
		return b.ctx.Err()
	}
	b.failed++
	if b.failed > b.e.cfg.FetchRetries {
		return fmt.Errorf("%w at byte %d: %w", ErrFetch, b.off, cause)
	}
	b.e.cfg.Log.Info("download connection lost; resuming", "offset", b.off, "attempt", b.failed, "err", cause)
	return b.e.cfg.Sleep(b.ctx, b.e.cfg.RetryDelay(b.failed))
}

func (b *body) Close() error {
	if b.rc != nil {
		err := b.rc.Close()
		b.rc = nil
		return err
	}
	return nil
}

var rejections = []error{
	trust.ErrExpired, trust.ErrRollback, trust.ErrThreshold, trust.ErrMismatch,
	trust.ErrNotFound, trust.ErrNoInstruction, trust.ErrRevoked, trust.ErrWrongHardware,
	trust.ErrWrongChannel, trust.ErrWrongDevice, trust.ErrStaleNonce, trust.ErrTooLong,
	trust.ErrDecrypt, trust.ErrInvalid,
}

// isRejection reports whether err is a verification failure (as opposed to
// an I/O failure): the update itself is invalid.
func isRejection(err error) bool { return rejectionReason(err) != "" }

// rejectionReason names the verification failure class for the report.
func rejectionReason(err error) string {
	for _, r := range rejections {
		if errors.Is(err, r) {
			return r.Error()
		}
	}
	return ""
}
