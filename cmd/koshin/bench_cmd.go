package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
)

func init() { register((*Main).benchCmd) }

func (m *Main) benchCmd() *cobra.Command {
	c := &cobra.Command{Use: "bench", Short: "Load generators for capacity measurements (docs/benchmarks.md)"}
	c.AddCommand(m.benchCheckInCmd())
	return c
}

type benchFlags struct {
	devices  int
	duration time.Duration
	reports  int
	resign   bool
	dataDir  string
	profile  string
	keyType  string
	store    string // sqlite or postgres (bench_replicas.go)
	replicas int
}

func (m *Main) benchCheckInCmd() *cobra.Command {
	var f benchFlags
	c := &cobra.Command{
		Use:   "checkin --devices N --duration D",
		Short: "Measure device check-ins per second against a real server on 127.0.0.1",
		Long: `Start a real koshin server on 127.0.0.1 (SQLite in a temporary data
directory, TLS, the production handlers), enroll N devices through the
device API, then let every device check in back to back over its own
kept-alive mutual-TLS connection for the duration, and report check-ins per
second with p50/p90/p99 latency.

With --store postgres the server uses a throw-away database created on the
PostgreSQL server that KOSHIN_POSTGRES__DSN names (and dropped afterwards),
and --replicas N starts N servers on it, as replicas behind a load
balancer are; device i talks to replica i mod N (docs/scale-out.md).

The load generator runs in the same process and on the same cores as the
server, so the figure is conservative. Check-in bodies are built before
the measurement (each device cycles through --reports of them, each with
its own nonce) so that the client's work does not compete with the server.
Like the agent, a device sends the same signed report while its state does
not change, so the server verifies it once; --resign signs a new report
into every body instead, the cost of a fleet whose every report changes.
The per-device rate limit is raised for the run, because devices
checking in back to back is exactly what it exists to stop.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return m.benchCheckIn(cmd.Context(), f) },
	}
	c.Flags().IntVar(&f.devices, "devices", 200, "devices, each with its own connection")
	c.Flags().DurationVar(&f.duration, "duration", 10*time.Second, "measurement time")
	c.Flags().IntVar(&f.reports, "reports", 8, "check-in bodies (distinct nonces) per device")
	c.Flags().BoolVar(&f.resign, "resign", false, "sign a new report into every check-in body (every report changed)")
	c.Flags().StringVar(&f.dataDir, "data-dir", "", "keep the server's data in `DIR` (default: a temporary directory)")
	c.Flags().StringVar(&f.profile, "cpuprofile", "", "write a CPU profile of the measurement to `FILE`")
	c.Flags().StringVar(&f.keyType, "key", "p256", "device key type: p256 (ECDSA, TPM-friendly) or ed25519")
	c.Flags().StringVar(&f.store, "store", storeSQLite, "server store: sqlite or postgres (a temporary database on the server KOSHIN_POSTGRES__DSN names)")
	c.Flags().IntVar(&f.replicas, "replicas", 1, "server replicas sharing the store (postgres only)")
	return c
}

func (m *Main) benchCheckIn(ctx context.Context, f benchFlags) error {
	if f.devices < 1 || f.devices > 100_000 || f.duration <= 0 || f.reports < 1 {
		return usagef("--devices must be 1-100000, --duration and --reports positive")
	}
	if f.keyType != "p256" && f.keyType != "ed25519" {
		return usagef("--key must be p256 or ed25519")
	}
	srvs, cleanup, err := m.benchServers(ctx, f)
	if err != nil {
		return err
	}
	defer cleanup()
	for _, srv := range srvs {
		fmt.Fprintf(m.Stdout, "server on %s (%s store)\n", srv.DeviceURL(), srv.Config.Store)
	}
	fmt.Fprintf(m.Stdout, "enrolling %d devices\n", f.devices)
	devs, err := benchEnroll(ctx, srvs, f)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "measuring for %s (GOMAXPROCS=%d)\n", f.duration, runtime.GOMAXPROCS(0))
	if f.profile != "" {
		pf, err := os.Create(f.profile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	pg := newPGCPUMeter(srvs)
	pg.Start(ctx)
	res := benchRun(ctx, devs, f.duration)
	res.dbCPU, res.dbMeasured = pg.Stop(ctx)
	res.print(m.Stdout, f)
	return nil
}

// benchServer starts a server the way `koshin server` does, in a fresh
// data directory, with an unlimited per-device bucket.
func (m *Main) benchServer(ctx context.Context, f benchFlags) (*ServerMain, func(), error) {
	dir := f.dataDir
	tmp := ""
	if dir == "" {
		var err error
		if tmp, err = os.MkdirTemp("", "koshin-bench-*"); err != nil {
			return nil, nil, err
		}
		dir = tmp
	}
	pass := []byte(hex.EncodeToString(randomKey(16)))
	bm := *m
	bm.Stdout = io.Discard
	bm.Passphrase = func(string) ([]byte, error) { return bytes.Clone(pass), nil }
	cfg := benchConfig(dir, f)
	if err := bm.initServer(ctx, cfg, trust.ChannelRelease, ""); err != nil {
		return nil, nil, err
	}
	s := &ServerMain{Config: cfg, Now: m.Now, Passphrase: bm.Passphrase, Log: slog.New(slog.DiscardHandler)}
	if err := s.Run(ctx); err != nil {
		return nil, nil, err
	}
	return s, func() {
		s.Close()
		if tmp != "" {
			os.RemoveAll(tmp)
		}
	}, nil
}

// benchConfig is a server on 127.0.0.1 with limits out of the way: the
// load generator's devices check in back to back from one address.
func benchConfig(dir string, f benchFlags) ServerConfig {
	cfg := defaultServerConfig()
	cfg.DataDir, cfg.DeviceListen, cfg.ManagementListen = dir, "127.0.0.1:0", "127.0.0.1:0"
	cfg.Limits.DeviceRate, cfg.Limits.DeviceBurst = 1e9, 1e6
	cfg.Limits.AddrRate, cfg.Limits.AddrBurst = 1e9, 1e6
	cfg.Limits.EnrollRate, cfg.Limits.EnrollBurst = 1e9, 1e6
	cfg.Limits.MaxInFlight = max(cfg.Limits.MaxInFlight, 2*f.devices)
	return cfg
}

func randomKey(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// benchDevice is one simulated device: its connection and signed bodies.
type benchDevice struct {
	client *http.Client
	url    string // check-in URL of the device's replica
	bodies [][]byte
}

// benchEnroll pre-authorises the devices (through the store, as an upload
// would), enrolls each over the device API of its replica (device i on
// replica i mod len(srvs)) and pre-signs its reports.
func benchEnroll(ctx context.Context, srvs []*ServerMain, f benchFlags) ([]*benchDevice, error) {
	srv := srvs[0]
	keys := make([]crypto.Signer, f.devices)
	var pre []*koshin.PreAuthorization
	for i := range keys {
		keys[i] = benchKey(f.keyType)
		der, _ := x509.MarshalPKIXPublicKey(keys[i].Public())
		pre = append(pre, &koshin.PreAuthorization{Serial: fmt.Sprintf("BENCH-%06d", i), HardwareID: "board-a", PublicKey: der})
	}
	for batch := range slices.Chunk(pre, koshin.MaxPreAuthorizations) {
		if err := srv.Store.CreatePreAuthorizations(ctx, batch); err != nil {
			return nil, err
		}
	}
	devs := make([]*benchDevice, f.devices)
	errs := make(chan error, f.devices)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			d, err := benchDeviceFor(ctx, srvs[i%len(srvs)], keys[i], pre[i].Serial, f)
			devs[i] = d
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return devs, nil
}

func benchKey(kind string) crypto.Signer {
	if kind == "ed25519" {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		return k
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return k
}

func benchDeviceFor(ctx context.Context, srv *ServerMain, key crypto.Signer, serial string, f benchFlags) (*benchDevice, error) {
	tc := &tls.Config{RootCAs: srv.PKI.ServerPool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
	enroll := deviceapi.NewClient(srv.DeviceURL(), &http.Client{Transport: &http.Transport{TLSClientConfig: tc}})
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, err
	}
	resp, err := enroll.Enroll(ctx, deviceapi.EnrollRequest{CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})),
		Serial: serial, HardwareID: "board-a"})
	if err != nil {
		return nil, fmt.Errorf("enroll %s: %w", serial, err)
	}
	blk, _ := pem.Decode([]byte(resp.Certificate))
	mtls := tc.Clone()
	mtls.Certificates = []tls.Certificate{{Certificate: [][]byte{blk.Bytes}, PrivateKey: key}}
	// One HTTP/1.1 connection per device, kept alive, as a device holds it.
	tr := &http.Transport{TLSClientConfig: mtls, MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	d := &benchDevice{client: &http.Client{Transport: tr, Timeout: time.Minute}, url: srv.DeviceURL() + deviceapi.PathCheckIn}
	var ci deviceapi.CheckIn
	for i := range f.reports {
		if i == 0 || f.resign {
			rep := deviceapi.Report{DeviceID: resp.DeviceID, Time: time.Now().UTC().Add(time.Duration(i) * time.Microsecond),
				HardwareID: "board-a", Components: []deviceapi.Component{{Name: "rootfs", Version: "1.0", ReleaseCounter: 1}},
				Slot: deviceapi.SlotState{Active: "A", Healthy: true}, Settings: deviceapi.Settings{UpdatesEnabled: true, Automatic: true},
				Security: deviceapi.Security{BootIntegrity: "verified"}}
			if ci, err = deviceapi.SignReport(key, rep); err != nil {
				return nil, err
			}
		}
		ci.Nonce = base64.RawURLEncoding.EncodeToString(randomKey(18))
		body, _ := json.Marshal(ci)
		d.bodies = append(d.bodies, body)
	}
	return d, nil
}

// benchResult collects latencies and failures.
type benchResult struct {
	elapsed time.Duration
	cpu     time.Duration // process CPU time during the run
	// dbCPU is the PostgreSQL backends' CPU time during the run, when
	// dbMeasured (same host only; bench_replicas.go).
	dbCPU      time.Duration
	dbMeasured bool
	latencies  []time.Duration
	failures   map[string]int
}

// benchRun lets every device check in back to back until the deadline,
// after one check-in each to open the kept-alive connections: the
// measurement is of check-ins, not of TLS handshakes.
func benchRun(ctx context.Context, devs []*benchDevice, d time.Duration) *benchResult {
	warm, stop := context.WithCancel(ctx)
	var once sync.WaitGroup
	for _, dev := range devs {
		once.Add(1)
		go func() {
			defer once.Done()
			dev.checkIn(warm, dev.url, dev.bodies[0])
		}()
	}
	once.Wait()
	stop()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	res := &benchResult{failures: map[string]int{}}
	var wg sync.WaitGroup
	var started atomic.Int64
	start, cpu0 := time.Now(), processCPU()
	for _, dev := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat, fails := dev.loop(ctx, dev.url, &started)
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			for k, v := range fails {
				res.failures[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed, res.cpu = time.Since(start), processCPU()-cpu0
	return res
}

func (d *benchDevice) loop(ctx context.Context, url string, started *atomic.Int64) ([]time.Duration, map[string]int) {
	var lat []time.Duration
	fails := map[string]int{}
	for i := 0; ctx.Err() == nil; i++ {
		started.Add(1)
		t0 := time.Now()
		status, err := d.checkIn(ctx, url, d.bodies[i%len(d.bodies)])
		switch {
		case err != nil && ctx.Err() == nil:
			fails["transport: "+firstLine(err.Error())]++
		case err != nil:
		case status != http.StatusOK:
			fails[http.StatusText(status)]++
		default:
			lat = append(lat, time.Since(t0))
		}
	}
	return lat, fails
}

// checkIn posts one signed report and reads the whole answer, so that the
// connection is reused.
func (d *benchDevice) checkIn(ctx context.Context, url string, body []byte) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

func (r *benchResult) print(w io.Writer, f benchFlags) {
	slices.Sort(r.latencies)
	pct := func(p float64) time.Duration {
		if len(r.latencies) == 0 {
			return 0
		}
		return r.latencies[min(len(r.latencies)-1, int(p*float64(len(r.latencies))))]
	}
	n := len(r.latencies)
	if f.replicas > 1 || f.store == storePostgres {
		fmt.Fprintf(w, "store %s, %d replica(s)\n", f.store, max(f.replicas, 1))
	}
	fmt.Fprintf(w, "devices %d (%s keys), duration %s: %d check-ins, %.0f check-ins/s\n", f.devices, f.keyType, r.elapsed.Round(time.Millisecond), n, float64(n)/r.elapsed.Seconds())
	fmt.Fprintf(w, "latency p50 %s  p90 %s  p99 %s  max %s\n", pct(0.50).Round(time.Microsecond), pct(0.90).Round(time.Microsecond),
		pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	if r.cpu > 0 {
		cores := float64(runtime.GOMAXPROCS(0))
		perCPU := float64(n) / r.cpu.Seconds()
		fmt.Fprintf(w, "process CPU %s (%.0f%% of %.0f cores); %.0f check-ins per CPU-second, i.e. %.0f/s if server and load generator had all %.0f cores\n",
			r.cpu.Round(time.Millisecond), 100*r.cpu.Seconds()/r.elapsed.Seconds()/cores, cores, perCPU, perCPU*cores, cores)
	}
	if r.dbMeasured && r.cpu > 0 {
		cores := float64(runtime.GOMAXPROCS(0))
		all := r.cpu + r.dbCPU
		perCPU := float64(n) / all.Seconds()
		fmt.Fprintf(w, "PostgreSQL backends CPU %s; with them %.0f check-ins per CPU-second, i.e. %.0f/s if server, load generator and database had all %.0f cores\n",
			r.dbCPU.Round(time.Millisecond), perCPU, perCPU*cores, cores)
	}
	for k, v := range r.failures {
		fmt.Fprintf(w, "failed: %d × %s\n", v, k)
	}
}
