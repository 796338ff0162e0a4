package s3_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/blobtest"
	"github.com/koshin-ota/koshin/s3"
)

const fakeBucket = "koshin-test"

// fakeServer is an in-process gofakes3 with one bucket. gofakes3 checks
// no signatures, so credential and expiry behaviour is tested against
// versitygw (integration_test.go).
func fakeServer(t testing.TB) *httptest.Server {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(fakeBucket); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(ts.Close)
	return ts
}

// randomKey returns n random hex characters: tests never use fixed
// credentials.
func randomKey(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)[:n]
}

func fakeConfig(t testing.TB, endpoint string) s3.Config {
	return s3.Config{
		Endpoint:  endpoint,
		Region:    "us-east-1",
		Bucket:    fakeBucket,
		Prefix:    "p-" + randomKey(t, 8),
		AccessKey: randomKey(t, 20), SecretKey: randomKey(t, 40),
		PathStyle:            true,
		PartSize:             s3.MinPartSize, // blobtest.LargeSize then spans three parts
		DisableContentSha256: true,           // gofakes3 keeps aws-chunked framing in parts
	}
}

func mustOpen(t testing.TB, cfg s3.Config) *s3.Store {
	t.Helper()
	s, err := s3.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformanceFake(t *testing.T) {
	ts := fakeServer(t)
	blobtest.Run(t, func(t *testing.T) koshin.BlobStore {
		return mustOpen(t, fakeConfig(t, ts.URL))
	})
}

// Stores with different prefixes in one bucket do not see each other.
func TestPrefixIsolation(t *testing.T) {
	ts := fakeServer(t)
	a, b := mustOpen(t, fakeConfig(t, ts.URL)), mustOpen(t, fakeConfig(t, ts.URL))
	blobtest.MustPut(t, a, "timestamp.json", []byte("a"))
	if _, err := b.Stat(context.Background(), "timestamp.json"); koshin.ErrorCode(err) != koshin.ENOTFOUND {
		t.Fatalf("other prefix sees the blob: %v", err)
	}
	for bi, err := range b.List(context.Background(), "") {
		t.Fatalf("other prefix lists %+v, %v", bi, err)
	}
}

// Keys that are not blob names (directory markers, other tools' files)
// are skipped by List.
func TestListSkipsForeignKeys(t *testing.T) {
	ts := fakeServer(t)
	cfg := fakeConfig(t, ts.URL)
	s := mustOpen(t, cfg)
	blobtest.MustPut(t, s, "targets/x", []byte("x"))
	// A "directory marker" written by a console: key ending in '/'.
	req, _ := http.NewRequest(http.MethodPut, ts.URL+"/"+fakeBucket+"/"+cfg.Prefix+"/targets/", strings.NewReader(""))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var got []string
	for bi, err := range s.List(context.Background(), "") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, bi.Name)
	}
	if len(got) != 1 || got[0] != "targets/x" {
		t.Fatalf("List = %q, want [targets/x]", got)
	}
}

func TestOpenConfigErrors(t *testing.T) {
	good := s3.Config{Endpoint: "https://s3.example.com", Bucket: "b-1", AccessKey: "a", SecretKey: "s"}
	for _, tt := range []struct {
		name string
		mod  func(*s3.Config)
		want string
	}{
		{"no credentials", func(c *s3.Config) { c.AccessKey, c.SecretKey = "", "" }, "no default credentials"},
		{"no secret", func(c *s3.Config) { c.SecretKey = "" }, "secret key"},
		{"bad endpoint", func(c *s3.Config) { c.Endpoint = "s3.example.com" }, "base URL"},
		{"endpoint path", func(c *s3.Config) { c.Endpoint = "https://s3.example.com/bucket" }, "base URL"},
		{"endpoint userinfo", func(c *s3.Config) { c.Endpoint = "https://k:s@s3.example.com" }, "base URL"},
		{"plain http", func(c *s3.Config) { c.Endpoint = "http://s3.example.com" }, "plain http"},
		{"bad bucket", func(c *s3.Config) { c.Bucket = "B_ad" }, "bucket"},
		{"bad prefix", func(c *s3.Config) { c.Prefix = "../x" }, "prefix"},
		{"small parts", func(c *s3.Config) { c.PartSize = 1 << 20 }, "part size"},
		{"cdn query", func(c *s3.Config) { c.CDNBaseURL = "https://cdn.example.com/?a=b" }, "CDN"},
	} {
		cfg := good
		tt.mod(&cfg)
		if _, err := s3.Open(cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Open error %v, want it to mention %q", tt.name, err, tt.want)
		}
	}
	for _, ep := range []string{"http://127.0.0.1:9000", "http://[::1]:9000", "http://localhost:9000"} {
		cfg := good
		cfg.Endpoint = ep
		if _, err := s3.Open(cfg); err != nil {
			t.Errorf("loopback http endpoint %s refused: %v", ep, err)
		}
	}
	cfg := good
	cfg.Endpoint, cfg.AllowHTTP = "http://s3.internal:9000", true
	if _, err := s3.Open(cfg); err != nil {
		t.Errorf("http with AllowHTTP refused: %v", err)
	}
}

func TestCDNBaseURL(t *testing.T) {
	cfg := s3.Config{Endpoint: "https://s3.example.com", Bucket: "b-1", AccessKey: "a", SecretKey: "s",
		Prefix: "image", CDNBaseURL: "https://cdn.example.com/fleet/"}
	s := mustOpen(t, cfg)
	u, err := s.PresignGet(context.Background(), "targets/ab12.fw+1.img", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://cdn.example.com/fleet/targets/ab12.fw%2B1.img"; u != want {
		t.Fatalf("CDN URL = %q, want %q", u, want)
	}
}

func TestCheck(t *testing.T) {
	ts := fakeServer(t)
	cfg := fakeConfig(t, ts.URL)
	if err := mustOpen(t, cfg).Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	cfg.Bucket = "no-such-bucket"
	err := mustOpen(t, cfg).Check(context.Background())
	blobtest.WantCode(t, err, koshin.EINTERNAL, "Check of a missing bucket")
	if !strings.Contains(koshin.ErrorMessage(err), "does not exist") {
		t.Fatalf("message %q does not say the bucket is missing", koshin.ErrorMessage(err))
	}
}

// An unreachable endpoint is EUNAVAILABLE (retry later), with the cause
// for the log.
func TestUnreachable(t *testing.T) {
	ts := fakeServer(t)
	cfg := fakeConfig(t, ts.URL)
	cfg.MaxRetries = 1
	ts.Close()
	s := mustOpen(t, cfg)
	_, err := s.Stat(context.Background(), "x")
	blobtest.WantCode(t, err, koshin.EUNAVAILABLE, "Stat on a closed server")
	if strings.Contains(koshin.ErrorMessage(err), "127.0.0.1") {
		t.Fatalf("message %q shows the endpoint", koshin.ErrorMessage(err))
	}
}

// Server errors map to EUNAVAILABLE, auth refusals to EINTERNAL with a
// message that says so and carries neither keys nor the server's text.
func TestErrorMapping(t *testing.T) {
	var status atomic.Int32
	var code atomic.Value
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(int(status.Load()))
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>`+code.Load().(string)+
			`</Code><Message>secret-detail</Message></Error>`)
	}))
	defer ts.Close()
	cfg := fakeConfig(t, ts.URL)
	cfg.MaxRetries = 1
	s := mustOpen(t, cfg)
	for _, tt := range []struct {
		status int
		code   string
		want   string
		msg    string
	}{
		{403, "InvalidAccessKeyId", koshin.EINTERNAL, "refused the configured credentials (InvalidAccessKeyId)"},
		{403, "SignatureDoesNotMatch", koshin.EINTERNAL, "refused the configured credentials"},
		{404, "NoSuchBucket", koshin.EINTERNAL, "bucket does not exist"},
		{404, "NoSuchKey", koshin.ENOTFOUND, "not found"},
		{503, "SlowDown", koshin.EUNAVAILABLE, "unavailable"},
		{500, "InternalError", koshin.EUNAVAILABLE, "unavailable"},
		{400, "<script>", koshin.EINTERNAL, "no error code"},
	} {
		status.Store(int32(tt.status))
		code.Store(tt.code)
		rc, _, err := s.Open(context.Background(), "targets/x", 0)
		if err == nil {
			rc.Close()
		}
		blobtest.WantCode(t, err, tt.want, tt.code)
		msg := koshin.ErrorMessage(err)
		if !strings.Contains(msg, tt.msg) || strings.Contains(msg, "secret-detail") || strings.Contains(msg, cfg.AccessKey) {
			t.Errorf("%s: message %q, want it to contain %q and no server text or key", tt.code, msg, tt.msg)
		}
		if !strings.Contains(err.Error(), tt.code) && tt.code != "<script>" {
			t.Errorf("%s: error %q lacks the cause", tt.code, err)
		}
	}
}

// Put refuses an announced size that the stream does not match even when
// the reader fails only at its very end.
func TestExactSizeSinglePut(t *testing.T) {
	ts := fakeServer(t)
	s := mustOpen(t, fakeConfig(t, ts.URL))
	ctx := context.Background()
	err := s.Put(ctx, "x", io.MultiReader(strings.NewReader("abc"), errAtEnd{}), 3)
	if err == nil {
		t.Fatal("Put succeeded though reading past the size failed")
	}
	if _, err := s.Stat(ctx, "x"); koshin.ErrorCode(err) != koshin.ENOTFOUND {
		t.Fatalf("Stat after failed Put: %v", err)
	}
}

type errAtEnd struct{}

func (errAtEnd) Read([]byte) (int, error) { return 0, errors.New("disk error") }
