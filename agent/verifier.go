package agent

import (
	"context"
	"io"
)

// Verifier is the narrow view of the trust core (trust/verify) the engine
// needs; an adapter wraps *verify.Verifier. Keeping it narrow lets the
// power-cut tests run against a fake when needed and keeps verification the
// trust core's job: the engine never decides on its own that bytes are good.
type Verifier interface {
	// Check refreshes the image repository, verifies the director metadata
	// against this device and the nonce it just sent, checks the
	// director/image agreement and anti-rollback rules, and returns the
	// targets to install (CCDS UPE11). installed maps component → the
	// committed release counter, the reference for anti-rollback. Failures
	// wrap the trust error sentinels (trust.ErrMismatch,
	// trust.ErrStaleNonce, ...).
	Check(ctx context.Context, director []byte, nonce string, installed map[string]uint64) ([]Target, error)
	// Payload wraps body, which yields t's bytes from offset on, in a
	// reader that hashes them, refuses more than t.Length bytes, enforces
	// the minimum-throughput watchdog and returns io.EOF only after all
	// bytes arrived and every signed hash matched. checkpoint is nil at
	// offset 0, else a value PayloadReader.Checkpoint returned at offset.
	Payload(t Target, body io.Reader, offset int64, checkpoint []byte) (PayloadReader, error)
}

// PayloadReader streams a payload while verifying it.
type PayloadReader interface {
	io.Reader
	// Checkpoint serialises the hash state after the bytes read so far so
	// that a later Payload call can resume at that offset.
	Checkpoint() ([]byte, error)
}

// Fetcher opens payload downloads. Open returns the bytes of url from
// offset on (HTTP Range); the body is untrusted until the PayloadReader has
// verified it.
type Fetcher interface {
	Open(ctx context.Context, url string, offset int64) (io.ReadCloser, error)
}
