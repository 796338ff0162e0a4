package sim

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/koshin-ota/koshin/deviceapi"
)

// Routes of the device API, for statistics.
const (
	routeEnroll   = "enroll"
	routeCheckIn  = "checkin"
	routeEvents   = "events"
	routeImage    = "image"
	routeDirector = "director"
	routeTargets  = "targets"
	routeMirror   = "mirror"
	routeOther    = "other"
)

var (
	errInjectedDrop = errors.New("sim: connection dropped (injected)")
	errOutage       = errors.New("sim: server unreachable (injected outage)")
	errNoPower      = errors.New("sim: device has no power")
	errOffline      = errors.New("sim: device taken offline for the final check")
	errNoSocket     = errors.New("sim: no free socket in the simulator (--max-conns)")
)

func routeOf(u *url.URL, serverHost string) string {
	if u.Host != serverHost {
		return routeMirror
	}
	p := u.Path
	switch {
	case p == deviceapi.PathEnroll:
		return routeEnroll
	case p == deviceapi.PathCheckIn:
		return routeCheckIn
	case p == deviceapi.PathEvents:
		return routeEvents
	case strings.HasPrefix(p, deviceapi.PathImage):
		return routeImage
	case strings.HasPrefix(p, deviceapi.PathDirector):
		return routeDirector
	case strings.HasPrefix(p, deviceapi.PathTargets):
		return routeTargets
	}
	return routeOther
}

// newTransport is a device's own HTTP transport: its own source address
// on a loopback server, the pinned server CA, and cert as its client
// certificate (nil before enrollment). Connections are closed after each
// poll (see device.idle), like a device that polls rarely.
func (f *Fleet) newTransport(i int, cert *tls.Certificate) *http.Transport {
	dialer := &net.Dialer{Timeout: 30 * time.Second}
	if f.spread {
		dialer.LocalAddr = &net.TCPAddr{IP: sourceIP(i)}
	}
	dial := dialer.DialContext
	if f.conns != nil {
		dial = f.conns.wrap(dialer.DialContext)
	}
	tc := &tls.Config{RootCAs: f.pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
		// Resumed sessions skip the handshake's signatures, which is
		// what a device reconnecting every poll would want.
		tc.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	}
	return &http.Transport{
		DialContext:            dial,
		TLSClientConfig:        tc,
		TLSHandshakeTimeout:    15 * time.Second,
		ResponseHeaderTimeout:  time.Minute,
		IdleConnTimeout:        30 * time.Second,
		MaxIdleConnsPerHost:    2,
		MaxResponseHeaderBytes: 64 << 10,
		DisableCompression:     true,
	}
}

// connLimit bounds the simulator's open connections, so that a fleet
// larger than the process's file-descriptor limit queues for sockets
// (as if the devices' connections were spread over more hosts) instead of
// failing with "too many open files", which would be the simulator's
// error, not the server's.
type connLimit chan struct{}

// socketWait bounds the wait for a free socket.
const socketWait = 2 * time.Minute

func (l connLimit) wrap(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		t := time.NewTimer(socketWait)
		defer t.Stop()
		select {
		case l <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
			return nil, errNoSocket
		}
		c, err := dial(ctx, network, addr)
		if err != nil {
			<-l
			return nil, err
		}
		return &limitedConn{Conn: c, l: l}, nil
	}
}

type limitedConn struct {
	net.Conn
	l    connLimit
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.l })
	return err
}

// sourceIP is device i's loopback address, from 127.0.1.0 upwards.
func sourceIP(i int) net.IP {
	n := i + 256
	return net.IPv4(127, byte(n>>16), byte(n>>8), byte(n))
}

// canSpread reports whether devices can use their own loopback source
// addresses: the server is on loopback, and the system answers on all of
// 127/8 (Linux does; macOS only on 127.0.0.1 by default).
func canSpread(serverURL string) bool {
	u, err := url.Parse(serverURL)
	if err != nil {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	if u.Hostname() == "localhost" {
		ip = net.IPv4(127, 0, 0, 1)
	}
	if ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return false
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(sourceIP(1).String(), "0"))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// link is a device's network as the scenario shapes it: no power, no
// network; an outage; latency; slow and dropping bodies. It records every
// request's outcome in the fleet's statistics.
type link struct {
	d    *device
	base http.RoundTripper
}

func (l *link) RoundTrip(req *http.Request) (*http.Response, error) {
	d, f := l.d, l.d.f
	if d.board != nil && d.board.Inj.Dead() {
		return nil, errNoPower
	}
	if d.offline.Load() {
		return nil, errOffline
	}
	if f.outage.Load() {
		f.stats.count(KindInjectedDown)
		d.netFailures.Add(1)
		return nil, errOutage
	}
	// The scenario's link applies to devices in service, not to the
	// simulator's own set-up (enrollment, the factory image).
	var sc Link
	if d.board != nil {
		sc = f.cfg.Scenario.Link
	}
	if sc.Latency > 0 {
		if err := sleepCtx(req.Context(), sc.Latency); err != nil {
			return nil, err
		}
	}
	route := routeOf(req.URL, f.serverHost)
	start := time.Now()
	resp, err := l.base.RoundTrip(req)
	if err != nil && req.Context().Err() != nil {
		return nil, err // the run or the request was cancelled: no verdict on the server
	}
	if f.stats.observe(route, time.Since(start), resp, err) {
		d.netFailures.Add(1)
	}
	if err != nil {
		return nil, err
	}
	d.noteAnswer(route, resp)
	if sc.Rate > 0 || sc.Drop > 0 {
		resp.Body = l.shape(req.Context(), resp, sc)
	}
	return resp, nil
}

// noteAnswer remembers the server's Retry-After and the device's first
// successful check-in.
func (d *device) noteAnswer(route string, resp *http.Response) {
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s >= 0 {
			until := time.Now().Add(time.Duration(min(s, 3600)) * time.Second).UnixNano()
			if until > d.retryUntil.Load() {
				d.retryUntil.Store(until)
			}
		}
	case http.StatusOK:
		if route == routeCheckIn {
			d.checkedIn()
		}
	}
}

// shape wraps a response body in the scenario's slow or dropping link.
func (l *link) shape(ctx context.Context, resp *http.Response, sc Link) io.ReadCloser {
	b := &shapedBody{rc: resp.Body, ctx: ctx, rate: sc.Rate, dropAt: -1, start: time.Now(), d: l.d}
	if sc.Drop > 0 && rand.Float64() < sc.Drop {
		size := resp.ContentLength
		if size <= 0 {
			size = 4 << 10
		}
		b.dropAt = rand.Int64N(size)
	}
	return b
}

// shapedBody delivers at most rate bytes per second and fails with
// errInjectedDrop after dropAt bytes (if dropAt ≥ 0).
type shapedBody struct {
	rc     io.ReadCloser
	ctx    context.Context
	rate   int64
	dropAt int64
	n      int64
	start  time.Time
	d      *device
}

func (b *shapedBody) Read(p []byte) (int, error) {
	if b.dropAt >= 0 {
		if b.n >= b.dropAt {
			b.dropAt = -1
			b.rc.Close()
			b.d.f.stats.count(KindInjectedDrop)
			b.d.netFailures.Add(1)
			b.d.interrupted.Store(true)
			return 0, errInjectedDrop
		}
		p = p[:min(int64(len(p)), b.dropAt-b.n)]
	}
	if b.rate > 0 {
		p = p[:min(int64(len(p)), max(b.rate/10, 1))]
	}
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if b.rate > 0 && n > 0 {
		due := b.start.Add(time.Duration(float64(b.n) / float64(b.rate) * float64(time.Second)))
		if serr := sleepCtx(b.ctx, time.Until(due)); serr != nil && err == nil {
			err = serr
		}
	}
	return n, err
}

func (b *shapedBody) Close() error { return b.rc.Close() }

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
