package tlslimit

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testPKI is a CA, a server certificate for 127.0.0.1 and a device
// (client) certificate, like the device API's mutual TLS.
type testPKI struct {
	server, client *tls.Config
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) tls.Certificate {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	return testPKI{
		server: &tls.Config{
			Certificates: []tls.Certificate{leaf(2, "server", x509.ExtKeyUsageServerAuth)},
			ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: pool,
		},
		client: &tls.Config{
			Certificates: []tls.Certificate{leaf(3, "device-1", x509.ExtKeyUsageClientAuth)},
			RootCAs:      pool, ServerName: "127.0.0.1",
		},
	}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// listen starts a Listener on 127.0.0.1 and closes it at the end.
func listen(t *testing.T, server *tls.Config, cfg Config) *Listener {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewListener(inner, server, cfg)
	if err != nil {
		inner.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// serve runs an HTTP server on l whose handler answers with the protocol
// and the client certificate's common name.
func serve(t *testing.T, l net.Listener, server *tls.Config) {
	t.Helper()
	srv := &http.Server{
		TLSConfig: server,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
				http.Error(w, "no client certificate", http.StatusForbidden)
				return
			}
			fmt.Fprintf(w, "%s %s", r.Proto, r.TLS.PeerCertificates[0].Subject.CommonName)
		}),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
}

// get makes one request on a fresh connection (a full handshake).
func get(url string, client *tls.Config, h2 bool) (string, error) {
	tr := &http.Transport{TLSClientConfig: client.Clone(), ForceAttemptHTTP2: h2, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s: %s", resp.Status, b)
	}
	return string(b), err
}

// concurrency records how many callers are inside at once.
type concurrency struct{ now, max atomic.Int32 }

func (c *concurrency) enter() {
	n := c.now.Add(1)
	for {
		m := c.max.Load()
		if n <= m || c.max.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(2 * time.Millisecond) // the handshake's CPU work, stretched
}

func (c *concurrency) leave() { c.now.Add(-1) }

// instrument makes the server's certificate lookup (first flight) and
// connection verification (after the client's certificate) report to c.
func instrument(server *tls.Config, c *concurrency) *tls.Config {
	server = server.Clone()
	certs := server.Certificates
	server.Certificates = nil
	server.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		c.enter()
		defer c.leave()
		return &certs[0], nil
	}
	server.VerifyConnection = func(tls.ConnectionState) error {
		c.enter()
		defer c.leave()
		return nil
	}
	return server
}

func TestManyClientsOneSlot(t *testing.T) {
	p := newTestPKI(t)
	var c concurrency
	server := instrument(p.server, &c)
	l := listen(t, server, Config{MaxHandshakes: 1, Queue: 8})
	serve(t, l, server)

	const clients = 40
	errs := make(chan error, clients)
	for range clients {
		go func() {
			body, err := get("https://"+l.Addr().String()+"/", p.client, false)
			if err == nil && body != "HTTP/1.1 device-1" {
				err = fmt.Errorf("body %q", body)
			}
			errs <- err
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if m := c.max.Load(); m != 1 {
		t.Errorf("at most %d handshakes computed at once, want 1", m)
	}
	s := l.Stats()
	if s.Completed != clients || s.Failed+s.TimedOut+s.Expired != 0 {
		t.Errorf("stats %+v, want %d completed and nothing else", s, clients)
	}

	// Control: without the limiter the same clients do overlap, so the
	// bound above is the limiter's doing.
	var free concurrency
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	plain := instrument(p.server, &free)
	tl := tls.NewListener(inner, plain)
	serve(t, tl, plain)
	for range clients {
		go func() {
			_, err := get("https://"+tl.Addr().String()+"/", p.client, false)
			errs <- err
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if free.max.Load() < 2 {
		t.Errorf("control: %d handshakes at once without the limiter, want several", free.max.Load())
	}
}

func TestSlotsBoundConcurrency(t *testing.T) {
	p := newTestPKI(t)
	var c concurrency
	server := instrument(p.server, &c)
	l := listen(t, server, Config{MaxHandshakes: 3})
	serve(t, l, server)
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			if _, err := get("https://"+l.Addr().String()+"/", p.client, false); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if m := c.max.Load(); m > 3 || m < 1 {
		t.Errorf("at most %d handshakes computed at once, want 1 to 3", m)
	}
}

// stalledClient sends its ClientHello and then never reads the server's
// answer, so it never sends its second flight.
func stalledClient(t *testing.T, addr string, client *tls.Config) {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		raw.Close()
	})
	go tls.Client(&blockedReader{Conn: raw, stop: stop}, client.Clone()).Handshake()
}

type blockedReader struct {
	net.Conn
	stop chan struct{}
}

func (b *blockedReader) Read([]byte) (int, error) {
	<-b.stop
	return 0, io.EOF
}

func TestSilentClientsHoldNoSlot(t *testing.T) {
	p := newTestPKI(t)
	const timeout = time.Second
	l := listen(t, p.server, Config{MaxHandshakes: 1, Timeout: timeout})
	serve(t, l, p.server)

	silent, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	stalledClient(t, l.Addr().String(), p.client)
	waitFor(t, "the stalled handshake to start", func() bool { return l.Stats().InFlight == 1 })

	// The only slot is free: a good client goes through before the
	// others time out.
	if _, err := get("https://"+l.Addr().String()+"/", p.client, false); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.TimedOut != 0 || s.Completed != 1 {
		t.Fatalf("stats %+v after the good client, want 1 completed and no time-out yet", s)
	}

	// Both are closed once their deadline passed.
	waitFor(t, "two time-outs", func() bool { return l.Stats().TimedOut == 2 })
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("silent connection read: %v, want closed by the server", err)
	}
	if s := l.Stats(); s.Busy != 0 || s.InFlight != 0 || s.Queued != 0 {
		t.Errorf("stats %+v, want nothing busy, in flight or queued", s)
	}
}

// blockFirst makes the server's first handshake wait in its certificate
// lookup (holding its slot) until release is closed or the handshake is
// cancelled; entered is closed when it started waiting.
func blockFirst(server *tls.Config) (cfg *tls.Config, entered, release chan struct{}) {
	cfg = server.Clone()
	certs := cfg.Certificates
	cfg.Certificates = nil
	entered, release = make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if first.CompareAndSwap(false, true) {
			close(entered)
			select {
			case <-release:
			case <-hello.Context().Done():
				return nil, hello.Context().Err()
			}
		}
		return &certs[0], nil
	}
	return cfg, entered, release
}

func TestQueueWaitLimit(t *testing.T) {
	p := newTestPKI(t)
	server, entered, release := blockFirst(p.server)
	const wait = 200 * time.Millisecond
	l := listen(t, server, Config{MaxHandshakes: 1, MaxWait: wait, Timeout: 10 * time.Second})
	serve(t, l, server)

	first := make(chan error, 1)
	go func() {
		_, err := get("https://"+l.Addr().String()+"/", p.client, false)
		first <- err
	}()
	<-entered

	// The second connection waits for the slot and is closed after wait.
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	err = tls.Client(raw, p.client.Clone()).Handshake()
	took := time.Since(start)
	if err == nil || isTimeout(err) {
		t.Fatalf("second handshake: %v, want closed by the server", err)
	}
	if took < wait/2 || took > 3*time.Second {
		t.Errorf("second connection closed after %s, want about %s", took, wait)
	}
	if s := l.Stats(); s.Expired != 1 || s.Queued != 0 {
		t.Errorf("stats %+v, want 1 expired and none queued", s)
	}

	close(release)
	if err := <-first; err != nil {
		t.Errorf("first client: %v", err)
	}
}

func TestFullQueueLeavesConnectionsInBacklog(t *testing.T) {
	p := newTestPKI(t)
	server, entered, release := blockFirst(p.server)
	l := listen(t, server, Config{MaxHandshakes: 1, Queue: 1})
	serve(t, l, server)

	results := make(chan error, 3)
	go func() {
		_, err := get("https://"+l.Addr().String()+"/", p.client, false)
		results <- err
	}()
	<-entered
	for range 2 {
		go func() {
			_, err := get("https://"+l.Addr().String()+"/", p.client, false)
			results <- err
		}()
	}
	// The others' TCP connections are established (kernel backlog) but not
	// accepted while the first one fills the queue.
	time.Sleep(200 * time.Millisecond)
	if s := l.Stats(); s.Queued != 0 || s.InFlight != 1 {
		t.Errorf("stats %+v with a full queue, want 1 in flight and none queued", s)
	}
	close(release)
	for range 3 {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	if s := l.Stats(); s.Completed != 3 {
		t.Errorf("stats %+v, want 3 completed", s)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	p := newTestPKI(t)
	server, entered, _ := blockFirst(p.server)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewListener(inner, server, Config{MaxHandshakes: 1})
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()

	accepted := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		accepted <- err
	}()
	// One handshake holding the slot, one waiting for it, one silent.
	clients := make(chan error, 2)
	for range 2 {
		go func() {
			raw, err := net.Dial("tcp", addr)
			if err != nil {
				clients <- err
				return
			}
			defer raw.Close()
			raw.SetDeadline(time.Now().Add(10 * time.Second))
			clients <- tls.Client(raw, p.client.Clone()).Handshake()
		}()
	}
	<-entered
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	waitFor(t, "three accepted connections", func() bool { s := l.Stats(); return s.InFlight+s.Queued == 3 })

	start := time.Now()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %s", took)
	}
	if err := <-accepted; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Accept after Close: %v", err)
	}
	l.Close() // idempotent
	for range 2 {
		if err := <-clients; err == nil || isTimeout(err) {
			t.Errorf("client handshake: %v, want closed by the server", err)
		}
	}
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("silent connection read: %v, want closed", err)
	}
	if g := leaked(); g != "" {
		t.Errorf("goroutines left after Close:\n%s", g)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("inner listener still accepts after Close")
	}
}

// leaked lists the goroutines still running the Listener's code.
func leaked() string {
	var found []string
	for range 50 {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		found = found[:0]
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "tlslimit.(*Listener)") || strings.Contains(g, "tlslimit.(*gate)") ||
				strings.Contains(g, "tlslimit.(*conn)") {
				found = append(found, g)
			}
		}
		if len(found) == 0 {
			return ""
		}
		time.Sleep(20 * time.Millisecond)
	}
	return strings.Join(found, "\n\n")
}

func TestHTTPServerSeesClientCertificate(t *testing.T) {
	p := newTestPKI(t)
	server := p.server.Clone()
	server.NextProtos = []string{"h2", "http/1.1"}
	l := listen(t, server, Config{})
	serve(t, l, server)
	url := "https://" + l.Addr().String() + "/"
	for _, c := range []struct {
		h2   bool
		want string
	}{{true, "HTTP/2.0 device-1"}, {false, "HTTP/1.1 device-1"}} {
		body, err := get(url, p.client, c.h2)
		if err != nil {
			t.Fatal(err)
		}
		if body != c.want {
			t.Errorf("answer %q, want %q", body, c.want)
		}
	}
	// A client without a certificate is refused during the handshake.
	anon := p.client.Clone()
	anon.Certificates = nil
	if _, err := get(url, anon, false); err == nil {
		t.Error("client without a certificate got an answer")
	}
	waitFor(t, "the refused handshake counted", func() bool { return l.Stats().Failed == 1 })
}

func TestConfigValidate(t *testing.T) {
	good := Config{}.WithDefaults()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if good.MaxHandshakes != 4*runtime.GOMAXPROCS(0) || good.Queue != DefaultQueue ||
		good.Timeout != DefaultTimeout || good.MaxWait != DefaultMaxWait {
		t.Errorf("defaults %+v", good)
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.MaxHandshakes = -1 },
		func(c *Config) { c.MaxHandshakes = MaxHandshakesLimit + 1 },
		func(c *Config) { c.Queue = -1 },
		func(c *Config) { c.Queue = MaxQueue + 1 },
		func(c *Config) { c.Timeout = -time.Second },
		func(c *Config) { c.Timeout = MaxTimeout + 1 },
		func(c *Config) { c.MaxWait = -time.Second },
		func(c *Config) { c.MaxWait = MaxTimeout + 1 },
	} {
		c := good
		bad(&c)
		if err := c.WithDefaults().Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
		if _, err := NewListener(nil, &tls.Config{}, c); err == nil {
			t.Errorf("NewListener accepted %+v", c)
		}
	}
	if _, err := NewListener(nil, nil, Config{}); err == nil {
		t.Error("NewListener accepted no TLS configuration")
	}
}

func TestGateServesOngoingFirst(t *testing.T) {
	g := newGate(1)
	far := time.Now().Add(time.Minute)
	if err := g.acquire(false, far, nil); err != nil {
		t.Fatal(err)
	}
	// A new handshake waits, and gives up at its deadline.
	if err := g.acquire(false, time.Now().Add(20*time.Millisecond), nil); err != errWaited {
		t.Fatalf("acquire on a full gate: %v, want errWaited", err)
	}
	order := make(chan string, 2)
	go func() {
		if g.acquire(false, far, nil) == nil {
			order <- "fresh"
			g.release()
		}
	}()
	waitFor(t, "the fresh waiter", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.fresh.Len() == 1 })
	go func() {
		if g.acquire(true, far, nil) == nil {
			order <- "ongoing"
			g.release()
		}
	}()
	waitFor(t, "the ongoing waiter", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.ongoing.Len() == 1 })
	g.release()
	if a, b := <-order, <-order; a != "ongoing" || b != "fresh" {
		t.Errorf("order %s, %s; want ongoing, fresh", a, b)
	}
	done := make(chan struct{})
	close(done)
	if err := g.acquire(false, far, done); err != nil {
		t.Fatalf("free gate: %v", err)
	}
	if err := g.acquire(false, far, done); err != errClosing {
		t.Errorf("closing: %v, want errClosing", err)
	}
	g.release()
	if b := g.busy(); b != 0 {
		t.Errorf("busy %d after releasing everything", b)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
