package trusttest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/koshin-ota/koshin/trust"
)

// File returns a published file (nil if absent).
func (r *Repo) File(path string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.files[path])
}

// SetFile publishes data at path, replacing what was there: the way to serve
// arbitrary, e.g. malicious, content.
func (r *Repo) SetFile(path string, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.files[path] = slices.Clone(data)
}

// RemoveFile unpublishes path.
func (r *Repo) RemoveFile(path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.files, path)
}

// Requests returns the paths requested so far, in order, and forgets them.
func (r *Repo) Requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.requests
	r.requests = nil
	return out
}

// lookup records a request and returns the file (nil, false if absent).
func (r *Repo) lookup(path string) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, path)
	data, ok := r.files[path]
	return data, ok
}

// relPath turns a URL under BaseURL into a file path.
func (r *Repo) relPath(u string) (string, error) {
	rest, ok := strings.CutPrefix(u, r.opt.BaseURL+"/")
	if !ok {
		return "", fmt.Errorf("%w: %s is not under %s", trust.ErrNotFound, u, r.opt.BaseURL)
	}
	return url.PathUnescape(rest)
}

// Fetch implements verify.Fetcher.
func (r *Repo) Fetch(ctx context.Context, u string, maxLen int64) ([]byte, error) {
	data, err := r.get(ctx, u)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > maxLen {
		return nil, fmt.Errorf("%w: %s has %d bytes, limit %d", trust.ErrTooLong, u, len(data), maxLen)
	}
	return slices.Clone(data), nil
}

// Open implements verify.Fetcher.
func (r *Repo) Open(ctx context.Context, u string, offset int64) (io.ReadCloser, error) {
	data, err := r.get(ctx, u)
	if err != nil {
		return nil, err
	}
	if offset < 0 || offset > int64(len(data)) {
		return nil, fmt.Errorf("open %s: offset %d outside %d bytes", u, offset, len(data))
	}
	return io.NopCloser(bytes.NewReader(slices.Clone(data[offset:]))), nil
}

func (r *Repo) get(ctx context.Context, u string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := r.relPath(u)
	if err != nil {
		return nil, err
	}
	data, ok := r.lookup(p)
	if !ok {
		return nil, fmt.Errorf("%w: %s", trust.ErrNotFound, u)
	}
	return data, nil
}

// ServeHTTP serves the published files at their paths (metadata/...,
// targets/...), with HTTP Range.
func (r *Repo) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	data, ok := r.lookup(strings.TrimPrefix(req.URL.Path, "/"))
	if !ok {
		http.NotFound(w, req)
		return
	}
	http.ServeContent(w, req, "", time.Time{}, bytes.NewReader(data))
}

// Serve starts an HTTP server for the repository on 127.0.0.1, closed when
// the test ends, and returns its base URL (use it in place of BaseURL).
func (r *Repo) Serve() string {
	srv := httptest.NewServer(r)
	r.tb.Cleanup(srv.Close)
	return srv.URL
}

// Mux serves several repositories through one Fetcher, each under its own
// BaseURL.
type Mux []*Repo

func (m Mux) route(u string) (*Repo, error) {
	for _, r := range m {
		if strings.HasPrefix(u, r.opt.BaseURL+"/") {
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w: no repository serves %s", trust.ErrNotFound, u)
}

// Fetch implements verify.Fetcher.
func (m Mux) Fetch(ctx context.Context, u string, maxLen int64) ([]byte, error) {
	r, err := m.route(u)
	if err != nil {
		return nil, err
	}
	return r.Fetch(ctx, u, maxLen)
}

// Open implements verify.Fetcher.
func (m Mux) Open(ctx context.Context, u string, offset int64) (io.ReadCloser, error) {
	r, err := m.route(u)
	if err != nil {
		return nil, err
	}
	return r.Open(ctx, u, offset)
}
