package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// This file holds the harness for tests that run `koshin server` as
// separate processes (so that one can be SIGKILLed): the binary built once,
// a throw-away PostgreSQL database, an S3 bucket prefix, server processes
// and a TCP load balancer in front of them.

// buildKoshin builds this command into a temporary directory.
func buildKoshin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "koshin")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// testPostgres creates a fresh database on the KOSHIN_TEST_PG cluster,
// dropped when the test ends, and returns its DSN; it skips the test when
// KOSHIN_TEST_PG is not set.
func testPostgres(t *testing.T) string {
	t.Helper()
	base := os.Getenv("KOSHIN_TEST_PG")
	if base == "" {
		t.Skip("KOSHIN_TEST_PG is not set: run .ci/start-postgres.sh (see docs/scale-out.md)")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	name := fmt.Sprintf("koshin_e2e_%s_%s", time.Now().UTC().Format("20060102t150405"), hex.EncodeToString(randomBytes(4)))
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		// FORCE ends sessions a killed replica's server side still holds.
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("KOSHIN_TEST_PG is not a URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// testS3 is a fresh key prefix in the KOSHIN_TEST_S3 bucket.
type testS3 struct {
	endpoint, region, bucket, prefix, access, secret string
}

// testBucket returns a bucket prefix on the KOSHIN_TEST_S3 server, or nil
// when KOSHIN_TEST_S3 is not set (the caller then uses a shared directory).
func testBucket(t *testing.T) *testS3 {
	t.Helper()
	endpoint := os.Getenv("KOSHIN_TEST_S3")
	if endpoint == "" {
		return nil
	}
	b := &testS3{endpoint: endpoint, region: os.Getenv("KOSHIN_TEST_S3_REGION"), bucket: os.Getenv("KOSHIN_TEST_S3_BUCKET"),
		prefix: "e2e-" + hex.EncodeToString(randomBytes(6)) + "/",
		access: os.Getenv("KOSHIN_TEST_S3_ACCESS_KEY"), secret: os.Getenv("KOSHIN_TEST_S3_SECRET_KEY")}
	if b.region == "" {
		b.region = "us-east-1"
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatalf("KOSHIN_TEST_S3: %v", err)
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(b.access, b.secret, ""),
		Secure: u.Scheme == "https", Region: b.region, BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if ok, err := c.BucketExists(ctx, b.bucket); err != nil {
		t.Fatalf("S3 bucket %s: %v", b.bucket, err)
	} else if !ok {
		if err := c.MakeBucket(ctx, b.bucket, minio.MakeBucketOptions{Region: b.region}); err != nil {
			t.Fatalf("make bucket: %v", err)
		}
	}
	t.Cleanup(func() {
		for obj := range c.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: b.prefix, Recursive: true}) {
			if obj.Err == nil {
				c.RemoveObject(ctx, b.bucket, obj.Key, minio.RemoveObjectOptions{})
			}
		}
	})
	return b
}

// serverProc is one `koshin server` process.
type serverProc struct {
	name      string
	cmd       *exec.Cmd
	logFile   string
	deviceURL string
	mgmtURL   string
	done      chan struct{}
	killed    bool
}

// startServer starts `koshin server --config cfg` and waits until it
// prints its listening addresses. Its JSON log goes to a file.
func startServer(t *testing.T, bin, name, cfg string, env []string) *serverProc {
	t.Helper()
	p := &serverProc{name: name, logFile: filepath.Join(filepath.Dir(cfg), name+".log"), done: make(chan struct{})}
	logf, err := os.Create(p.logFile)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "server", "--config", cfg)
	p.cmd.Env = env
	p.cmd.Stderr = logf
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	sc := bufio.NewScanner(out)
	for (p.deviceURL == "" || p.mgmtURL == "") && sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "device API"); ok {
			p.deviceURL = strings.TrimSpace(v)
		} else if v, ok := strings.CutPrefix(line, "management API"); ok {
			p.mgmtURL = strings.TrimSpace(v)
		}
	}
	go io.Copy(io.Discard, out)
	if p.deviceURL == "" || p.mgmtURL == "" {
		<-p.done
		log, _ := os.ReadFile(p.logFile)
		t.Fatalf("%s did not start: %v\n%s", name, p.cmd.ProcessState, log)
	}
	return p
}

// kill sends SIGKILL to the process this test started, by its PID.
func (p *serverProc) kill(t *testing.T) {
	t.Helper()
	p.killed = true
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill %s: %v", p.name, err)
	}
	<-p.done
}

// stop ends the process gracefully (SIGTERM) unless it is gone already.
func (p *serverProc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(os.Interrupt)
	<-p.done
	if !p.killed && t.Failed() {
		log, _ := os.ReadFile(p.logFile)
		t.Logf("%s log:\n%s", p.name, lastLines(log, 40))
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// logRecords returns the JSON log records of the process whose msg is msg.
func (p *serverProc) logRecords(t *testing.T, msg string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(p.logFile)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for line := range bytes.Lines(data) {
		var rec map[string]any
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber() // lock keys are 64-bit integers
		if dec.Decode(&rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// tcpBalancer is a layer-4 load balancer as replicas sit behind in
// production: it passes TLS through (the servers check the devices'
// certificates themselves), hands connections to the backends in turn and
// skips backends that refuse connections.
type tcpBalancer struct {
	ln net.Listener

	mu       sync.Mutex
	backends []string
	next     int
	conns    map[string]int // connections handed to each backend
}

func startBalancer(t *testing.T, backends ...string) *tcpBalancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lb := &tcpBalancer{ln: ln, backends: backends, conns: map[string]int{}}
	t.Cleanup(func() { ln.Close() })
	go lb.serve()
	return lb
}

// URL is the balancer's https base URL.
func (lb *tcpBalancer) URL() string { return "https://" + lb.ln.Addr().String() }

func (lb *tcpBalancer) serve() {
	for {
		c, err := lb.ln.Accept()
		if err != nil {
			return
		}
		go lb.handle(c)
	}
}

func (lb *tcpBalancer) pick() string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	b := lb.backends[lb.next%len(lb.backends)]
	lb.next++
	return b
}

func (lb *tcpBalancer) handle(c net.Conn) {
	defer c.Close()
	for range len(lb.backends) {
		b := lb.pick()
		up, err := net.Dial("tcp", b)
		if err != nil {
			continue // dead backend: try the next, as a health-checking balancer would
		}
		lb.mu.Lock()
		lb.conns[b]++
		lb.mu.Unlock()
		done := make(chan struct{}, 2)
		go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
		go func() { io.Copy(c, up); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
		<-done
		<-done
		up.Close()
		return
	}
}

// connections returns how many connections each backend got.
func (lb *tcpBalancer) connections() map[string]int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	out := map[string]int{}
	for k, v := range lb.conns {
		out[k] = v
	}
	return out
}

// mgmtClient calls one replica's management API.
type mgmtClient struct {
	t     *testing.T
	url   string
	http  *http.Client
	token string
}

func newMgmtClient(t *testing.T, base string, pool *x509.CertPool) *mgmtClient {
	return &mgmtClient{t: t, url: base, http: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}}
}

// call sends body (JSON unless it is []byte, then sent as text/csv) and
// decodes a JSON answer into out; it fails the test unless the status is
// want.
func (c *mgmtClient) call(method, path string, body any, want int, out any) {
	c.t.Helper()
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, ctype = bytes.NewReader(b), "text/csv"
	default:
		data, _ := json.Marshal(b)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, c.url+path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", ctype)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
}
