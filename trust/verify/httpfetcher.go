package verify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/koshin-ota/koshin/trust"
)

// DefaultWindow is HTTPFetcher's stall timeout and throughput window.
const DefaultWindow = 30 * time.Second

// HTTPFetcher fetches over HTTP(S) with the protections go-tuf's fetcher
// lacks: no response may stall for longer than Window, and with MinRate set
// every Window must deliver at least MinRate bytes per second (slow-retrieval
// attack). Payloads are streamed, never buffered.
type HTTPFetcher struct {
	// Client defaults to NewHTTPClient(nil).
	Client *http.Client
	// MinRate is the throughput floor in bytes per second; 0 disables it
	// (the stall timeout still applies).
	MinRate int64
	// Window is the stall timeout and the throughput measuring window;
	// zero means DefaultWindow.
	Window time.Duration
	// Now is the clock for throughput measurement; nil means time.Now.
	Now func() time.Time
	// UserAgent, if set, is sent with every request.
	UserAgent string
}

// NewHTTPClient returns a client for devices: bounded dial, TLS-handshake
// and response-header waits, TLS 1.2 or later, and no overall timeout,
// because payloads are large and HTTPFetcher bounds stalls and throughput
// instead. tlsConfig may be nil or carry the device's client certificate.
func NewHTTPClient(tlsConfig *tls.Config) *http.Client {
	if tlsConfig == nil {
		tlsConfig = &tls.Config{}
	} else {
		tlsConfig = tlsConfig.Clone()
	}
	if tlsConfig.MinVersion < tls.VersionTLS12 {
		tlsConfig.MinVersion = tls.VersionTLS12
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            dialer.DialContext,
		TLSClientConfig:        tlsConfig,
		TLSHandshakeTimeout:    15 * time.Second,
		ResponseHeaderTimeout:  30 * time.Second,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		ForceAttemptHTTP2:      true,
	}}
}

// Fetch implements Fetcher.
func (f *HTTPFetcher) Fetch(ctx context.Context, url string, maxLen int64) ([]byte, error) {
	if maxLen <= 0 {
		return nil, fmt.Errorf("%w: fetch %s: limit %d", trust.ErrInvalid, url, maxLen)
	}
	body, size, err := f.get(ctx, url, 0)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	if size > maxLen {
		return nil, fmt.Errorf("%w: %s announces %d bytes, limit %d", trust.ErrTooLong, url, size, maxLen)
	}
	data, err := io.ReadAll(io.LimitReader(body, maxLen+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	if int64(len(data)) > maxLen {
		return nil, fmt.Errorf("%w: %s exceeds %d bytes", trust.ErrTooLong, url, maxLen)
	}
	return data, nil
}

// Open implements Fetcher.
func (f *HTTPFetcher) Open(ctx context.Context, url string, offset int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, fmt.Errorf("%w: open %s: offset %d", trust.ErrInvalid, url, offset)
	}
	body, _, err := f.get(ctx, url, offset)
	return body, err
}

func (f *HTTPFetcher) window() time.Duration {
	if f.Window > 0 {
		return f.Window
	}
	return DefaultWindow
}

// get starts a request whose every phase is under the stall timer and
// returns the body positioned at offset and the announced remaining length
// (-1 if unknown).
func (f *HTTPFetcher) get(ctx context.Context, url string, offset int64) (io.ReadCloser, int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	window := f.window()
	stallErr := fmt.Errorf("%w: %s sent nothing for %s", trust.ErrTooSlow, url, window)
	b := &watchedBody{ctx: ctx, cancel: cancel, window: window,
		meter: newRateMeter(f.MinRate, window, f.Now)}
	b.stall = time.AfterFunc(window, func() { cancel(stallErr) })
	resp, err := f.do(ctx, url, offset)
	if err != nil {
		b.stop()
		return nil, 0, b.cause(fmt.Errorf("fetch %s: %w", url, err))
	}
	b.rc = resp.Body
	size, err := positionBody(b, resp, url, offset)
	if err != nil {
		b.Close()
		return nil, 0, err
	}
	return b, size, nil
}

func (f *HTTPFetcher) do(ctx context.Context, url string, offset int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	if f.UserAgent != "" {
		req.Header.Set("User-Agent", f.UserAgent)
	}
	client := f.Client
	if client == nil {
		client = defaultClient
	}
	return client.Do(req)
}

var defaultClient = NewHTTPClient(nil)

// positionBody checks the status and makes sure the body starts at offset:
// a server that ignores Range (200) has the prefix skipped; a 416 at a
// non-zero offset means nothing is left (the PayloadReader then decides
// whether the file was complete).
func positionBody(b *watchedBody, resp *http.Response, url string, offset int64) (int64, error) {
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return 0, fmt.Errorf("%w: %s: HTTP %d", trust.ErrNotFound, url, resp.StatusCode)
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && offset > 0:
		b.rc.Close()
		b.rc = http.NoBody
		return 0, nil
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
		if err := checkContentRange(resp.Header.Get("Content-Range"), offset); err != nil {
			return 0, fmt.Errorf("fetch %s: %w", url, err)
		}
		return resp.ContentLength, nil
	case resp.StatusCode == http.StatusOK:
		if offset > 0 {
			if _, err := io.CopyN(io.Discard, b, offset); err != nil {
				return 0, fmt.Errorf("fetch %s: skip to %d: %w", url, offset, err)
			}
			return -1, nil
		}
		return resp.ContentLength, nil
	default:
		return 0, fmt.Errorf("fetch %s: HTTP %s", url, resp.Status)
	}
}

// checkContentRange accepts "bytes START-END/TOTAL" with START == offset.
func checkContentRange(h string, offset int64) error {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return fmt.Errorf("bad Content-Range %q", h)
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return fmt.Errorf("bad Content-Range %q", h)
	}
	n, err := strconv.ParseInt(start, 10, 64)
	if err != nil || n != offset {
		return fmt.Errorf("Content-Range %q does not start at %d", h, offset)
	}
	return nil
}

// watchedBody cancels its request when no byte arrives within window or the
// throughput falls below the floor.
type watchedBody struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	window time.Duration
	stall  *time.Timer
	meter  rateMeter
	rc     io.ReadCloser
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.meter.begin()
	n, err := b.rc.Read(p)
	if n > 0 {
		b.stall.Reset(b.window)
	}
	if merr := b.meter.add(n); merr != nil {
		b.cancel(merr)
		return n, merr
	}
	if err != nil && err != io.EOF {
		err = b.cause(err)
	}
	return n, err
}

// cause prefers the watchdog's reason over the transport's "context canceled".
func (b *watchedBody) cause(err error) error {
	if c := context.Cause(b.ctx); c != nil && errors.Is(c, trust.ErrTooSlow) {
		return c
	}
	return err
}

func (b *watchedBody) stop() {
	b.stall.Stop()
	b.cancel(nil)
}

func (b *watchedBody) Close() error {
	b.stop()
	if b.rc == nil {
		return nil
	}
	return b.rc.Close()
}
