package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/blobtest"
	"github.com/koshin-ota/koshin/s3"
	"github.com/koshin-ota/koshin/trust/verify"
)

// TestConformanceIntegration runs the suite against the real server with
// minio-go's default upload options (streaming SigV4 chunk signatures,
// which gofakes3 cannot take for multipart parts).
func TestConformanceIntegration(t *testing.T) {
	integrationConfig(t)
	blobtest.Run(t, func(t *testing.T) koshin.BlobStore { return mustOpen(t, integrationConfig(t)) })
}

// Wrong credentials fail every request with a clear, caller-safe error,
// and nothing is stored.
func TestWrongCredentials(t *testing.T) {
	cfg := integrationConfig(t)
	good := mustOpen(t, cfg)
	blobtest.MustPut(t, good, "present", []byte("x"))
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		mod   func(*s3.Config)
		codes []string // AWS's code, and versitygw's where it differs
	}{
		{"wrong secret", func(c *s3.Config) { c.SecretKey = randomKey(t, 40) }, []string{"SignatureDoesNotMatch"}},
		{"unknown access key", func(c *s3.Config) { c.AccessKey = randomKey(t, 20) }, []string{"InvalidAccessKeyId", "XAdminUserNotFound"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bad := cfg
			tt.mod(&bad)
			s := mustOpen(t, bad)
			err := s.Check(ctx)
			blobtest.WantCode(t, err, koshin.EINTERNAL, "Check")
			if msg := koshin.ErrorMessage(err); !strings.Contains(msg, "refused the configured credentials") {
				t.Fatalf("Check message %q does not say the credentials were refused", msg)
			}
			if strings.Contains(err.Error(), bad.SecretKey) || strings.Contains(err.Error(), cfg.SecretKey) {
				t.Fatal("error shows a secret key")
			}
			t.Logf("Check: %v", err)
			// Operations on objects report the server's code.
			err = s.Put(ctx, "new", strings.NewReader("y"), 1)
			blobtest.WantCode(t, err, koshin.EINTERNAL, "Put")
			if msg := koshin.ErrorMessage(err); !slices.ContainsFunc(tt.codes, func(c string) bool { return strings.Contains(msg, c) }) {
				t.Errorf("Put message %q names none of %q", msg, tt.codes)
			}
			_, err = s.Stat(ctx, "present")
			blobtest.WantCode(t, err, koshin.EINTERNAL, "Stat")
			for _, err := range s.List(ctx, "") {
				blobtest.WantCode(t, err, koshin.EINTERNAL, "List")
			}
			if _, err := good.Stat(ctx, "new"); koshin.ErrorCode(err) != koshin.ENOTFOUND {
				t.Fatalf("a Put with wrong credentials stored something: %v", err)
			}
		})
	}
}

// A presigned URL stops working once its TTL has passed. SigV4 URLs live
// at least one second; the test waits at most 10 s for the refusal.
func TestPresignedURLExpires(t *testing.T) {
	s := mustOpen(t, integrationConfig(t))
	blobtest.MustPut(t, s, "targets/e.img", []byte("expiring"))
	signed := time.Now()
	u, err := s.PresignGet(context.Background(), "targets/e.img", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := get(t, u, ""); status != http.StatusOK || body != "expiring" {
		t.Fatalf("fresh URL: %d %q", status, body)
	}
	// Wait until the second after expiry (the server compares whole
	// seconds), then poll briefly.
	time.Sleep(time.Until(signed.Add(2 * time.Second)))
	deadline := time.Now().Add(8 * time.Second)
	for {
		status, body := get(t, u, "")
		if status == http.StatusForbidden {
			if !strings.Contains(body, "AccessDenied") && !strings.Contains(strings.ToLower(body), "expired") {
				t.Errorf("expired URL refused with body %.300q, want AccessDenied or expired", body)
			}
			t.Logf("expired after %v: %d %.200s", time.Since(signed).Round(time.Millisecond), status, body)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("URL with a 1 s TTL still answers %d after %v", status, time.Since(signed))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// A presigned URL whose signature or object name was changed is refused.
func TestPresignedURLTampered(t *testing.T) {
	s := mustOpen(t, integrationConfig(t))
	blobtest.MustPut(t, s, "targets/a.img", []byte("a"))
	blobtest.MustPut(t, s, "targets/b.img", []byte("b"))
	u, err := s.PresignGet(context.Background(), "targets/a.img", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(u, "X-Amz-Signature=") + len("X-Amz-Signature=")
	flipped := u[:i] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", u[i])+1)%16]) + u[i+1:]
	for _, bad := range []string{flipped, strings.Replace(u, "/targets/a.img", "/targets/b.img", 1)} {
		if status, _ := get(t, bad, ""); status != http.StatusForbidden {
			t.Errorf("tampered URL answered %d, want 403", status)
		}
	}
}

// The device's downloader (trust/verify.HTTPFetcher) resumes from an offset
// through a presigned URL, following the server's redirect with its Range
// header, and PayloadReader verifies the whole payload.
func TestPresignedDownloadWithHTTPFetcher(t *testing.T) {
	testFetcherThroughRedirect(t, mustOpen(t, integrationConfig(t)))
}

func TestPresignedDownloadWithHTTPFetcherFake(t *testing.T) {
	testFetcherThroughRedirect(t, mustOpen(t, fakeConfig(t, fakeServer(t).URL)))
}

func testFetcherThroughRedirect(t *testing.T, s *s3.Store) {
	ctx := context.Background()
	data := blobtest.Data(21, 3<<20+17)
	name := "targets/" + sha256hex(data) + ".fw+1.img"
	blobtest.MustPut(t, s, name, data)
	// Stand-in for the koshin server: answers a device's target request
	// with a redirect to a fresh presigned URL.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := s.PresignGet(r.Context(), strings.TrimPrefix(r.URL.Path, "/"), 5*time.Minute)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, u, http.StatusFound)
	}))
	defer api.Close()
	f := &verify.HTTPFetcher{MinRate: 1024, Window: 10 * time.Second}
	in := verify.Install{Name: "fw+1.img", Length: int64(len(data)), Hashes: map[string][]byte{
		"sha256": sum256(data), "sha512": sum512(data)}}

	rc, err := f.Open(ctx, api.URL+"/"+name, 0)
	if err != nil {
		t.Fatal(err)
	}
	pr := verify.NewPayloadReader(rc, in, verify.PayloadOptions{})
	n, err := io.Copy(io.Discard, pr)
	rc.Close()
	if err != nil || n != int64(len(data)) {
		t.Fatalf("verified download: %d bytes, %v", n, err)
	}
	for _, off := range []int64{1, 1 << 20, int64(len(data)) - 1} {
		rc, err := f.Open(ctx, api.URL+"/"+name, off)
		if err != nil {
			t.Fatalf("resume at %d: %v", off, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data[off:]) {
			t.Fatalf("resume at %d: %d bytes, %v; want %d", off, len(got), err, int64(len(data))-off)
		}
	}
	// Directly, without the redirect, too.
	u, err := s.PresignGet(ctx, name, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	rc, err = f.Open(ctx, u, 1000)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data[1000:]) {
		t.Fatalf("direct ranged GET: %d bytes, %v", len(got), err)
	}
	// A missing payload is trust.ErrNotFound for the device.
	if _, err := f.Open(ctx, api.URL+"/targets/missing.img", 0); err == nil {
		t.Fatal("missing payload opened")
	}
}

func get(t *testing.T, url, rng string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

func sum256(b []byte) []byte { h := sha256.Sum256(b); return h[:] }
func sum512(b []byte) []byte { h := sha512.Sum512(b); return h[:] }

func sha256hex(b []byte) string {
	const digits = "0123456789abcdef"
	var out [64]byte
	for i, c := range sha256.Sum256(b) {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out[:])
}
