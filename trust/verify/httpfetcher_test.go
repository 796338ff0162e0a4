package verify_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/koshin-ota/koshin/trust/verify"
)

// roundTrip answers every request with body and no Content-Length.
type roundTrip struct{ body io.ReadCloser }

func (rt roundTrip) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Status: "200 OK", Body: rt.body, ContentLength: -1,
		Header: http.Header{}, Request: req}, nil
}

// countingBody is endless and counts what the client read.
type countingBody struct{ n int64 }

func (c *countingBody) Read(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
func (c *countingBody) Close() error               { return nil }

// Endless metadata: Fetch stops after maxLen+1 bytes.
func TestHTTPFetchEndless(t *testing.T) {
	body := &countingBody{}
	f := &verify.HTTPFetcher{Client: &http.Client{Transport: roundTrip{body}}}
	_, err := f.Fetch(context.Background(), "http://repo.test/metadata/timestamp.json", 1000)
	wantErr(t, err, trust.ErrTooLong)
	if body.n > 1001 {
		t.Fatalf("read %d bytes for a 1000-byte limit", body.n)
	}
}

// Throughput below the floor on the injected clock fails the transfer.
func TestHTTPFetchTooSlow(t *testing.T) {
	clock := trusttest.NewClock(trusttest.Epoch)
	slow := io.NopCloser(&trusttest.SlowReader{R: bytes.NewReader(make([]byte, 1<<20)), Clock: clock, Chunk: 100, Step: time.Second})
	f := &verify.HTTPFetcher{Client: &http.Client{Transport: roundTrip{slow}},
		MinRate: 1000, Window: 10 * time.Second, Now: clock.Now}
	rc, err := f.Open(context.Background(), "http://repo.test/targets/x", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, err = readAll(rc, 4096)
	wantErr(t, err, trust.ErrTooSlow)
}

// A server that sends headers and then nothing is cut off after Window.
// (The test's only timing is the stall timeout itself; it asserts the
// outcome, not a duration.)
func TestHTTPFetchStall(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	f := &verify.HTTPFetcher{Client: srv.Client(), Window: 50 * time.Millisecond}
	_, err := f.Fetch(context.Background(), srv.URL+"/metadata/timestamp.json", 1000)
	wantErr(t, err, trust.ErrTooSlow)
}

func TestHTTPFetcherRepository(t *testing.T) {
	repo := trusttest.NewRepo(t, trusttest.Options{})
	data := testPayload(5000)
	tf := repo.AddTarget("dir/p.img", data, nil)
	base := repo.Serve()
	f := &verify.HTTPFetcher{Client: &http.Client{}}
	ctx := context.Background()

	got, err := f.Fetch(ctx, base+"/metadata/1.root.json", verify.DefaultMaxRootSize)
	if err != nil || !bytes.Equal(got, repo.TrustedRoot()) {
		t.Fatalf("fetch root: %d bytes, %v", len(got), err)
	}
	_, err = f.Fetch(ctx, base+"/metadata/2.root.json", verify.DefaultMaxRootSize)
	wantErr(t, err, trust.ErrNotFound)
	_, err = f.Fetch(ctx, base+"/metadata/1.root.json", 10) // Content-Length says too long
	wantErr(t, err, trust.ErrTooLong)

	url := base + "/" + trusttest.TargetPath("dir/p.img", tf.Hashes["sha256"])
	for _, off := range []int64{0, 1, 4096, 4999, 5000} {
		rc, err := f.Open(ctx, url, off)
		if err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		tail, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(tail, data[off:]) {
			t.Fatalf("offset %d: %d bytes, %v", off, len(tail), err)
		}
	}
	_, err = f.Open(ctx, base+"/targets/missing", 0)
	wantErr(t, err, trust.ErrNotFound)
}

// A server that ignores Range still yields the requested tail; one that
// answers a different range is refused.
func TestHTTPOpenRangeFallback(t *testing.T) {
	data := testPayload(3000)
	var mode string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode {
		case "ignore":
			w.Write(data)
		case "wrong":
			w.Header().Set("Content-Range", "bytes 0-2999/3000")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(data)
		}
	}))
	defer srv.Close()
	f := &verify.HTTPFetcher{Client: srv.Client()}

	mode = "ignore"
	rc, err := f.Open(context.Background(), srv.URL+"/p", 1000)
	if err != nil {
		t.Fatal(err)
	}
	tail, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(tail, data[1000:]) {
		t.Fatalf("got %d bytes", len(tail))
	}
	mode = "wrong"
	if _, err := f.Open(context.Background(), srv.URL+"/p", 1000); err == nil || !strings.Contains(err.Error(), "Content-Range") {
		t.Fatalf("mismatched Content-Range accepted: %v", err)
	}
}

// The whole verifier over real HTTP, both repositories on 127.0.0.1.
func TestVerifierOverHTTP(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	imgURL, dirURL := f.img.Serve(), f.dir.Serve()
	cfg.ImageURL, cfg.TargetsURL, cfg.DirectorURL = imgURL+"/metadata", imgURL+"/targets", dirURL+"/metadata"
	cfg.Fetcher = &verify.HTTPFetcher{Client: &http.Client{}}
	rotateRoot(f.dir)
	f.img.Publish()
	v, err := verify.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := v.RefreshImage(ctx); err != nil {
		t.Fatal(err)
	}
	nonce := f.nonce()
	plan, err := v.CheckDirector(ctx, f.dir.Instruct(f.img, f.dev, nonce, release), nonce)
	if err != nil {
		t.Fatal(err)
	}
	in := plan.Targets[0]
	rc, err := cfg.Fetcher.Open(ctx, in.URL, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, err := io.ReadAll(verify.NewPayloadReader(rc, in, verify.PayloadOptions{})); err != nil || !bytes.Equal(got, payload(release)) {
		t.Fatalf("payload: %d bytes, %v", len(got), err)
	}
	if !strings.HasPrefix(in.URL, imgURL+"/targets/") {
		t.Fatalf("URL %s", in.URL)
	}
}
