package verify

import (
	"context"
	"io"
)

// Fetcher is the verifier's only network access, so that mirrors, a USB
// bundle or an in-memory test repository can stand in for HTTP.
type Fetcher interface {
	// Fetch returns a metadata file. A missing file returns an error wrapping
	// trust.ErrNotFound; a body longer than maxLen returns trust.ErrTooLong
	// after reading at most maxLen+1 bytes.
	Fetch(ctx context.Context, url string, maxLen int64) ([]byte, error)
	// Open streams a payload starting at byte offset (HTTP Range), for
	// resuming an interrupted download. A missing file wraps trust.ErrNotFound.
	// Open does not verify anything: wrap the stream in a PayloadReader.
	Open(ctx context.Context, url string, offset int64) (io.ReadCloser, error)
}
