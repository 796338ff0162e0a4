package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/blobpublish"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/postgres"
	"github.com/koshin-ota/koshin/s3"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/verify"
)

// TestReplicasFailover is the scale-out issue's end-to-end check: two
// `koshin server` processes (the real binary) share one PostgreSQL
// database and one image repository (an S3 bucket when KOSHIN_TEST_S3 is
// set, with payload downloads redirected to presigned URLs; otherwise a
// shared directory), behind a TCP load balancer. They were set up the
// documented way: `koshin server init` once, then its pki/ and director/
// copied to the second replica's data directory. Ten devices, spread over
// both replicas by the balancer, run a three-phase rollout concurrently,
// verifying every instruction and payload as the agent does. Once the
// second phase is assigned, the replica running the rollout engine is
// SIGKILLed; the other one takes the engine over and finishes the rollout.
// Afterwards: every device was assigned exactly once and committed, every
// event a device got a 2xx for is in the database, the audit chain
// verifies, and a third server with its own keys refuses to join.
func TestReplicasFailover(t *testing.T) {
	dsn := testPostgres(t)
	bucket := testBucket(t)
	bin := buildKoshin(t)
	f := newReplicaFixture(t, bin, dsn, bucket)

	a := startServer(t, bin, "replica-a", f.config("a"), f.env)
	b := startServer(t, bin, "replica-b", f.config("b"), f.env)
	f.refuseForeignKeys()
	lb := startBalancer(t, strings.TrimPrefix(a.deviceURL, "https://"), strings.TrimPrefix(b.deviceURL, "https://"))

	f.adminCreate()
	mgmt := map[*serverProc]*mgmtClient{a: f.login(a), b: f.login(b)}
	var imported struct{ Imported []string }
	mgmt[a].call("POST", "/api/v1/releases/import", nil, 200, &imported)
	if len(imported.Imported) != 1 || imported.Imported[0] != "fw-2.0" {
		t.Fatalf("imported %v", imported.Imported)
	}
	devs := f.enroll(mgmt[b], lb.URL(), 10)
	for _, d := range devs { // a first report: updates are on
		_, err := d.client.Report(context.Background(), d.key, d.report(1), hex.EncodeToString(randomBytes(16)))
		mustDo(t, err)
	}

	var created struct{ Rollout struct{ ID int64 } }
	mgmt[b].call("POST", "/api/v1/rollouts", map[string]any{
		"name": "fw-2.0 over two replicas", "release": "fw-2.0", "selector": map[string]any{"all": true},
		"phases":          []map[string]any{{"count": 2}, {"count": 4}, {"percent": 100}},
		"threshold":       map[string]any{"max_failures": 1},
		"silence_timeout": int64(time.Hour), "mode": "automatic",
	}, 201, &created)
	id := created.Rollout.ID
	mgmt[a].call("POST", fmt.Sprintf("/api/v1/rollouts/%d/start", id), nil, 200, nil)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(devs))
	for _, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.run(ctx); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("device %s: %w", d.serial, err)
				cancel()
			}
		}()
	}

	// Mid-rollout: phase 2 is assigned, nobody has advanced past it yet.
	waitFor(t, "phase 2", func() bool { return f.rollout(mgmt[a], id).Rollout.Phase >= 1 || ctx.Err() != nil })
	holder, survivor := f.engineHolder(a, b)
	if holder == nil {
		t.Fatal("no replica holds the rollout engine's lock")
	}
	before := lb.connections()
	holder.kill(t)
	// The rollout is still running: only an engine tick after this point
	// can advance and complete it, so the survivor's engine must.
	st := f.rollout(mgmt[survivor], id).Rollout
	if st.State != koshin.RolloutRunning {
		t.Fatalf("the rollout was %s when %s died, want running", st.State, holder.name)
	}
	t.Logf("killed %s (ran the rollout engine) in phase %d; %s takes over", holder.name, st.Phase+1, survivor.name)
	waitFor(t, survivor.name+" to take the engine's lock", func() bool {
		h, _ := f.engineHolder(a, b)
		return h == survivor
	})

	waitFor(t, "rollout completed", func() bool {
		return f.rollout(mgmt[survivor], id).Rollout.State == koshin.RolloutCompleted || ctx.Err() != nil
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	for _, backend := range []*serverProc{a, b} {
		if before[strings.TrimPrefix(backend.deviceURL, "https://")] == 0 {
			t.Errorf("no device connection reached %s before the kill: %v", backend.name, before)
		}
	}
	if len(survivor.logRecords(t, "background job running on this replica")) == 0 {
		t.Fatalf("%s never ran the rollout engine", survivor.name)
	}
	// A session opened on one replica works on the other.
	mgmt[survivor].token = mgmt[holder].token
	mgmt[survivor].call("GET", "/api/v1/me", nil, 200, nil)
	f.checkDatabase(id, devs)
	for _, d := range devs {
		if bucket == nil && len(d.redirects) != 0 {
			t.Errorf("device %s was redirected without a bucket: %v", d.serial, d.redirects)
		}
		if bucket != nil && (len(d.redirects) < 2 || d.redirects[0] != strings.TrimPrefix(bucket.endpoint, "http://")) {
			t.Errorf("device %s: payload requests were redirected to %v, want the bucket at %s", d.serial, d.redirects, bucket.endpoint)
		}
	}
}

// engineHolder returns the replica whose session holds the rollout
// engine's advisory lock (PostgreSQL says which backend holds it; each
// replica logs the backend PID of every lock it takes) and the other one;
// nil if none holds it.
func (f *replicaFixture) engineHolder(a, b *serverProc) (holder, other *serverProc) {
	t := f.t
	t.Helper()
	if f.store == nil {
		f.store = postgres.NewDB(f.dsn)
		mustDo(t, f.store.Open(context.Background()))
		t.Cleanup(func() { f.store.Close() })
	}
	key := postgres.LockKey("koshin/rollout-engine")
	pid, held, err := f.store.LockHolder(context.Background(), key)
	mustDo(t, err)
	if !held {
		return nil, nil
	}
	took := func(p *serverProc) bool {
		for _, rec := range p.logRecords(t, "lock: acquired") {
			if fmt.Sprint(rec["pid"]) == fmt.Sprint(pid) && fmt.Sprint(rec["key"]) == fmt.Sprint(key) {
				return true
			}
		}
		return false
	}
	switch {
	case took(a) && !took(b):
		return a, b
	case took(b) && !took(a):
		return b, a
	}
	t.Fatalf("lock holder PID %d is in the logs of neither or both replicas", pid)
	return nil, nil
}

// waitFor polls cond. It gives up only shortly before the test binary's
// own deadline (go test -timeout), to report what it was waiting for.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline, hasDeadline := t.Deadline()
	for !cond() {
		if hasDeadline && time.Until(deadline) < 15*time.Second {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// replicaFixture is an installation prepared for replicas: a published
// image repository (in a directory shared by the replicas, or uploaded to
// the bucket), a key directory made by `koshin server init`, configuration
// files and the environment the processes get.
type replicaFixture struct {
	t       *testing.T
	e       *e2e // the image repository half of the in-process fixture
	bin     string
	dsn     string
	bucket  *testS3
	env     []string
	adminPW string
	pool    *x509.CertPool
	store   *postgres.DB // for looking at the lock
}

func newReplicaFixture(t *testing.T, bin, dsn string, bucket *testS3) *replicaFixture {
	e := &e2e{t: t, clock: &fakeClock{t: time.Now().UTC()}, dir: t.TempDir()}
	e.published = filepath.Join(e.dir, "published")
	e.publish([]e2eRelease{{name: "fw-2.0", hw: []string{"board-a"}, counter: 2}})
	f := &replicaFixture{t: t, e: e, bin: bin, dsn: dsn, bucket: bucket}
	f.env = append(os.Environ(), "KOSHIN_PASSPHRASE="+hex.EncodeToString(randomBytes(16)), "KOSHIN_POSTGRES__DSN="+dsn)
	if bucket != nil {
		f.env = append(f.env, "KOSHIN_S3_ACCESS_KEY="+bucket.access, "KOSHIN_S3_SECRET_KEY="+bucket.secret)
		f.uploadRepository()
	}
	// `koshin server init` once; the second replica gets a copy of the key
	// directory, as docs/scale-out.md says.
	f.run(nil, "server", "init", "--config", f.config("a"))
	for _, sub := range []string{"pki", "director"} {
		mustDo(t, copyDir(filepath.Join(e.dir, "a", sub), filepath.Join(e.dir, "b", sub)))
	}
	ca, err := os.ReadFile(filepath.Join(e.dir, "a", "pki", "server-ca.crt"))
	mustDo(t, err)
	f.pool = x509.NewCertPool()
	f.pool.AppendCertsFromPEM(ca)
	return f
}

// uploadRepository puts the published directory into the bucket, as
// `koshin repo publish-s3` does.
func (f *replicaFixture) uploadRepository() {
	b := f.bucket
	st, err := s3.Open(s3.Config{Endpoint: b.endpoint, Region: b.region, Bucket: b.bucket, Prefix: b.prefix,
		AccessKey: b.access, SecretKey: b.secret, PathStyle: true, CacheControl: blobpublish.CacheControl})
	mustDo(f.t, err)
	_, err = blobpublish.Dir(context.Background(), st, f.e.published, "", blobpublish.Options{})
	mustDo(f.t, err)
}

// config writes replica name's configuration file (once) and returns its
// path. Nothing secret is in it: the DSN, passphrase and S3 keys come
// from the environment.
func (f *replicaFixture) config(name string) string {
	dir := filepath.Join(f.e.dir, name)
	p := filepath.Join(dir, "koshin.yaml")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	mustDo(f.t, os.MkdirAll(dir, 0o700))
	cfg := fmt.Sprintf(`data_dir: %s
store: postgres
device_listen: 127.0.0.1:0
management_listen: 127.0.0.1:0
engine_interval: 2s
log_level: info
limits:
  replicas: 2
  device_rate: 200
  device_burst: 100
`, dir)
	if b := f.bucket; b != nil {
		cfg += fmt.Sprintf(`blob:
  backend: s3
  s3:
    endpoint: %s
    region: %s
    bucket: %s
    prefix: %s
    path_style: true
    presign_ttl: 1m
`, b.endpoint, b.region, b.bucket, b.prefix)
	} else {
		cfg += "image:\n  dir: " + f.e.published + "\n"
	}
	mustDo(f.t, os.WriteFile(p, []byte(cfg), 0o600))
	return p
}

// run runs the koshin binary and returns its output; it fails the test if
// the command fails.
func (f *replicaFixture) run(stdin []byte, args ...string) string {
	f.t.Helper()
	out, err := f.try(stdin, args...)
	if err != nil {
		f.t.Fatalf("koshin %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (f *replicaFixture) try(stdin []byte, args ...string) (string, error) {
	cmd := exec.Command(f.bin, args...)
	cmd.Env = f.env
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// refuseForeignKeys: a server initialised with keys of its own cannot join
// the installation's database.
func (f *replicaFixture) refuseForeignKeys() {
	out, err := f.try(nil, "server", "init", "--config", f.config("c"))
	if err == nil || !strings.Contains(out, "not the one the installation was initialised with") {
		f.t.Fatalf("a server with other keys joined the database: %v\n%s", err, out)
	}
}

// adminCreate makes the first administrator with the CLI, on the shared
// database.
func (f *replicaFixture) adminCreate() {
	f.adminPW = "pw-" + hex.EncodeToString(randomBytes(12))
	f.run([]byte(f.adminPW+"\n"), "admin", "create", "--config", f.config("a"), "--name", "root-admin", "--role", "admin", "--password-stdin")
}

// login opens a session on replica p; sessions live in the database, so
// each replica's token works on the other too.
func (f *replicaFixture) login(p *serverProc) *mgmtClient {
	c := newMgmtClient(f.t, p.mgmtURL, f.pool)
	var s struct{ Token string }
	c.call("POST", "/api/v1/sessions", map[string]string{"name": "root-admin", "password": f.adminPW}, 200, &s)
	c.token = s.Token
	return c
}

func (f *replicaFixture) rollout(c *mgmtClient, id int64) statusView {
	var st statusView
	c.call("GET", fmt.Sprintf("/api/v1/rollouts/%d", id), nil, 200, &st)
	return st
}

// enroll pre-authorises n devices and enrolls each through the balancer.
func (f *replicaFixture) enroll(c *mgmtClient, base string, n int) []*fleetDevice {
	t := f.t
	imgRoot, err := os.ReadFile(filepath.Join(f.e.published, "1.root.json"))
	mustDo(t, err)
	dirRoot, err := os.ReadFile(filepath.Join(f.e.dir, "a", "director", "1.root.json"))
	mustDo(t, err)
	devs := make([]*fleetDevice, n)
	csv := "serial,hardware_id,public_key\n"
	for i := range devs {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		mustDo(t, err)
		der, _ := x509.MarshalPKIXPublicKey(key.Public())
		devs[i] = &fleetDevice{serial: fmt.Sprintf("RSN-%04d", i), id: koshin.DeviceID(der), key: key, base: base,
			sent: map[string]bool{}, payload: []byte("payload of fw-2.0")}
		csv += fmt.Sprintf("%s,board-a,%s\n", devs[i].serial, (&device{key: key}).publicKeyB64())
	}
	c.call("POST", "/api/v1/preauthorizations", []byte(csv), 201, nil)
	for _, d := range devs {
		mustDo(t, d.enroll(f.pool))
		vdir := t.TempDir()
		mustDo(t, verify.Provision(vdir, imgRoot, dirRoot, trust.ChannelRelease))
		d.v, err = verify.New(verify.Config{
			Device: trust.Device{ID: d.id, HardwareID: "board-a", Channel: trust.ChannelRelease, Installed: map[string]uint64{"rootfs": 1}},
			Dir:    vdir, ImageURL: base + deviceapi.PathImage, DirectorURL: base + deviceapi.PathDirector,
			TargetsURL: base + deviceapi.PathTargets, Now: time.Now, Fetcher: &verify.HTTPFetcher{Client: d.hc},
		})
		mustDo(t, err)
	}
	return devs
}

// checkDatabase looks at the shared database directly: one assignment per
// device in the rollout, all committed; every acknowledged event stored,
// nothing stored that no device sent; the audit chain intact.
func (f *replicaFixture) checkDatabase(id int64, devs []*fleetDevice) {
	t := f.t
	db, err := sql.Open("pgx", f.dsn)
	mustDo(t, err)
	defer db.Close()
	rows, err := db.Query(`SELECT device_id, COUNT(*), MIN(state), MAX(state) FROM assignments WHERE rollout_id = $1 GROUP BY device_id`, id)
	mustDo(t, err)
	assigned := map[string]int{}
	for rows.Next() {
		var dev, lo, hi string
		var n int
		mustDo(t, rows.Scan(&dev, &n, &lo, &hi))
		assigned[dev] = n
		if n != 1 || lo != string(koshin.AssignmentCommitted) || hi != lo {
			t.Errorf("device %s: %d assignments (states %s..%s), want one committed", dev, n, lo, hi)
		}
	}
	mustDo(t, rows.Err())
	if len(assigned) != len(devs) {
		t.Errorf("%d devices assigned, want %d", len(assigned), len(devs))
	}

	stored := map[string]bool{}
	rows, err = db.Query(`SELECT device_id, event_id FROM events`)
	mustDo(t, err)
	for rows.Next() {
		var dev, ev string
		mustDo(t, rows.Scan(&dev, &ev))
		stored[dev+"/"+ev] = true
	}
	mustDo(t, rows.Err())
	acked, sent := 0, map[string]bool{}
	for _, d := range devs {
		for _, ev := range d.acked {
			acked++
			if !stored[d.id+"/"+ev] {
				t.Errorf("event %s of %s was acknowledged but is not stored", ev, d.serial)
			}
		}
		for ev := range d.sent {
			sent[d.id+"/"+ev] = true
		}
	}
	for k := range stored {
		if !sent[k] {
			t.Errorf("stored event %s was never sent", k)
		}
	}
	t.Logf("%d events acknowledged, %d stored", acked, len(stored))

	st := postgres.NewDB(f.dsn)
	mustDo(t, st.Open(context.Background()))
	defer st.Close()
	if _, err := st.VerifyAudit(context.Background()); err != nil {
		t.Errorf("audit chain: %v", err)
	}
}

// fleetDevice is a device of the replica test: it reaches the servers
// only through the load balancer, verifies what it is told with the
// device-side verifier, and retries whatever fails (a replica dying under
// it included) like the agent does.
type fleetDevice struct {
	serial, id string
	key        *ecdsa.PrivateKey
	base       string
	hc         *http.Client
	client     *deviceapi.Client
	v          *verify.Verifier
	payload    []byte

	seq       int
	sent      map[string]bool // event IDs sent
	acked     []string        // event IDs answered with 2xx
	redirects []string        // hosts that payload downloads were redirected to
}

func (d *fleetDevice) enroll(pool *x509.CertPool) error {
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	c := deviceapi.NewClient(d.base, verify.NewHTTPClient(tc))
	c.Attempts = 1
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, d.key)
	if err != nil {
		return err
	}
	resp, err := c.Enroll(context.Background(), deviceapi.EnrollRequest{
		CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})), Serial: d.serial, HardwareID: "board-a"})
	if err != nil {
		return err
	}
	blk, _ := pem.Decode([]byte(resp.Certificate))
	if blk == nil {
		return errors.New("no certificate")
	}
	tc.Certificates = []tls.Certificate{{Certificate: [][]byte{blk.Bytes}, PrivateKey: d.key}}
	d.hc = verify.NewHTTPClient(tc)
	d.hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > 1 {
			return errors.New("more than one redirect")
		}
		d.redirects = append(d.redirects, req.URL.Host)
		return nil
	}
	d.client = deviceapi.NewClient(d.base, d.hc)
	d.client.Attempts = 1
	return nil
}

// run polls until the device has installed and committed the update. A
// failed request (a replica dying, 429, 503) is retried after a pause; a
// verification failure ends the run with an error.
func (d *fleetDevice) run(ctx context.Context) error {
	if err := d.retry(ctx, func() error { return d.v.RefreshImage(ctx) }); err != nil {
		return err
	}
	counter := uint64(1)
	for ctx.Err() == nil {
		pause(ctx)
		nonce := hex.EncodeToString(randomBytes(16))
		resp, err := d.client.Report(ctx, d.key, d.report(counter), nonce)
		if err != nil {
			continue
		}
		if counter == 2 {
			return nil // the update is committed and reported
		}
		if resp.Director == nil {
			continue
		}
		plan, err := d.v.CheckDirector(ctx, resp.Director, nonce)
		if err != nil {
			return fmt.Errorf("director instruction: %w", err)
		}
		if len(plan.Targets) != 1 || plan.Targets[0].Name != "fw-2.0" {
			return fmt.Errorf("plan %+v", plan)
		}
		if err := d.retry(ctx, func() error { return d.download(ctx, plan.Targets[0]) }); err != nil {
			return err
		}
		for _, typ := range []deviceapi.EventType{deviceapi.EventDownloading, deviceapi.EventDownloaded,
			deviceapi.EventInstalling, deviceapi.EventRebooting, deviceapi.EventCommitted} {
			if err := d.event(ctx, typ); err != nil {
				return err
			}
		}
		counter = 2
		d.v.SetInstalled(map[string]uint64{"rootfs": 2})
	}
	return ctx.Err()
}

func (d *fleetDevice) report(counter uint64) deviceapi.Report {
	return deviceapi.Report{
		DeviceID: d.id, Time: time.Now().UTC(), HardwareID: "board-a",
		Components: []deviceapi.Component{{Name: "rootfs", Version: fmt.Sprintf("%d.0", counter), ReleaseCounter: counter}},
		Slot:       deviceapi.SlotState{Active: "A", Healthy: true},
		Settings:   deviceapi.Settings{UpdatesEnabled: true, Automatic: true, Notifications: true},
		Security:   deviceapi.Security{BootIntegrity: "verified"},
	}
}

// download fetches the payload in two parts, the second a resume with
// Range (through the redirect when the repository is in a bucket), and
// checks it against the signed length and hash.
func (d *fleetDevice) download(ctx context.Context, in verify.Install) error {
	f := &verify.HTTPFetcher{Client: d.hc}
	head, err := f.Open(ctx, in.URL, 0)
	if err != nil {
		return err
	}
	first := make([]byte, 5)
	_, err = io.ReadFull(head, first)
	head.Close()
	if err != nil {
		return err
	}
	rest, err := f.Open(ctx, in.URL, 5)
	if err != nil {
		return err
	}
	defer rest.Close()
	tail, err := io.ReadAll(rest)
	if err != nil {
		return err
	}
	got := append(first, tail...)
	sum := sha256.Sum256(got)
	if int64(len(got)) != in.Length || !bytes.Equal(sum[:], in.Hashes["sha256"]) || !bytes.Equal(got, d.payload) {
		return fmt.Errorf("%w: downloaded payload does not match its signed length and hash", errVerification)
	}
	return nil
}

var errVerification = errors.New("verification failed")

// event reports one event, retrying with the same ID until a 2xx: the
// server stores a retried event once.
func (d *fleetDevice) event(ctx context.Context, typ deviceapi.EventType) error {
	d.seq++
	ev := deviceapi.Event{ID: fmt.Sprintf("%s-%d", d.serial, d.seq), Type: typ, Target: "fw-2.0", Time: time.Now().UTC()}
	d.sent[ev.ID] = true
	err := d.retry(ctx, func() error { return d.client.Events(ctx, deviceapi.EventBatch{Events: []deviceapi.Event{ev}}) })
	if err == nil {
		d.acked = append(d.acked, ev.ID)
	}
	return err
}

// retry runs fn until it succeeds, ctx ends, or it fails verification.
func (d *fleetDevice) retry(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if err == nil || errors.Is(err, errVerification) || ctx.Err() != nil {
			return err
		}
		pause(ctx)
	}
}

// pause waits 100-300 ms: devices here poll far more often than real ones
// so that the rollout runs while a replica dies.
func pause(ctx context.Context) {
	t := time.NewTimer(100*time.Millisecond + mrand.N(200*time.Millisecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
