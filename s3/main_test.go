package s3_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/koshin-ota/koshin/s3"
)

// Integration tests and benchmarks run against a real S3 server:
//
//	KOSHIN_TEST_S3=http://127.0.0.1:PORT      an endpoint, with
//	KOSHIN_TEST_S3_ACCESS_KEY, KOSHIN_TEST_S3_SECRET_KEY (required),
//	KOSHIN_TEST_S3_BUCKET (default koshin-test; created if missing),
//	KOSHIN_TEST_S3_REGION (default us-east-1)
//
// or, without KOSHIN_TEST_S3,
//
//	KOSHIN_VERSITYGW=/path/to/versitygw       the tests start it themselves
//	                                          on 127.0.0.1 with random keys
//
// .ci/start-versitygw.sh builds versitygw and prints the first set.
// Without either, the integration tests skip.
var s3env struct {
	endpoint, access, secret, bucket, region string
	skip                                     string // why integration tests skip
}

func TestMain(m *testing.M) {
	stop, err := setupS3()
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3 integration setup:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

func setupS3() (stop func(), err error) {
	e := &s3env
	e.region, e.bucket = os.Getenv("KOSHIN_TEST_S3_REGION"), os.Getenv("KOSHIN_TEST_S3_BUCKET")
	if e.region == "" {
		e.region = "us-east-1"
	}
	if e.bucket == "" {
		e.bucket = "koshin-test"
	}
	if e.endpoint = os.Getenv("KOSHIN_TEST_S3"); e.endpoint != "" {
		e.access, e.secret = os.Getenv("KOSHIN_TEST_S3_ACCESS_KEY"), os.Getenv("KOSHIN_TEST_S3_SECRET_KEY")
		if e.access == "" || e.secret == "" {
			return nil, fmt.Errorf("KOSHIN_TEST_S3 is set but KOSHIN_TEST_S3_ACCESS_KEY or KOSHIN_TEST_S3_SECRET_KEY is not")
		}
		return func() {}, nil
	}
	if bin := os.Getenv("KOSHIN_VERSITYGW"); bin != "" {
		return startVersitygw(bin)
	}
	e.skip = "no S3 server: set KOSHIN_TEST_S3 (see .ci/start-versitygw.sh) or KOSHIN_VERSITYGW=/path/to/versitygw"
	return func() {}, nil
}

// startVersitygw runs versitygw on a free loopback port with a posix
// backend in a temporary directory and random root credentials, given
// through its environment.
func startVersitygw(bin string) (func(), error) {
	dir, err := os.MkdirTemp("", "koshin-s3-test-")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	s3env.access, s3env.secret = randomHex(10), randomHex(20)
	cmd := exec.Command(bin, "--port", addr, "--quiet", "posix", dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s3env.access, "ROOT_SECRET_ACCESS_KEY="+s3env.secret)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	}
	s3env.endpoint = "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s3env.endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("versitygw did not answer on %s within 30s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return fmt.Sprintf("%x", b)
}

// bucketOnce creates the test bucket unless it exists. The store itself
// never creates buckets: that, and the bucket's policy, is the operator's.
var bucketOnce = sync.OnceValue(func() error {
	u, err := url.Parse(s3env.endpoint)
	if err != nil {
		return err
	}
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(s3env.access, s3env.secret, ""),
		Secure: u.Scheme == "https", Region: s3env.region, BucketLookup: minio.BucketLookupPath})
	if err != nil {
		return err
	}
	ctx := context.Background()
	if ok, err := c.BucketExists(ctx, s3env.bucket); err != nil || ok {
		return err
	}
	return c.MakeBucket(ctx, s3env.bucket, minio.MakeBucketOptions{Region: s3env.region})
})

// integrationConfig returns the configuration of a real S3 server with a
// fresh key prefix whose objects are deleted when the test ends, or skips.
func integrationConfig(tb testing.TB) s3.Config {
	tb.Helper()
	if s3env.skip != "" {
		tb.Skip(s3env.skip)
	}
	if err := bucketOnce(); err != nil {
		tb.Fatalf("create bucket %s: %v", s3env.bucket, err)
	}
	cfg := s3.Config{
		Endpoint: s3env.endpoint, Region: s3env.region, Bucket: s3env.bucket,
		Prefix:    "test-" + randomKey(tb, 12) + "/",
		AccessKey: s3env.access, SecretKey: s3env.secret,
		PathStyle: true,
		PartSize:  s3.MinPartSize,
	}
	tb.Cleanup(func() { deleteAll(tb, cfg) })
	return cfg
}

func deleteAll(tb testing.TB, cfg s3.Config) {
	s, err := s3.Open(cfg)
	if err != nil {
		tb.Error(err)
		return
	}
	ctx := context.Background()
	var names []string
	for bi, err := range s.List(ctx, "") {
		if err != nil {
			tb.Errorf("clean-up list: %v", err)
			return
		}
		names = append(names, bi.Name)
	}
	for _, n := range names {
		if err := s.Delete(ctx, n); err != nil {
			tb.Errorf("clean-up: %v", err)
		}
	}
}
