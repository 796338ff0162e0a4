package httpapi

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/fileblob"
)

type fakePresigner struct{ ttl time.Duration }

func (p *fakePresigner) PresignGet(_ context.Context, name string, ttl time.Duration) (string, error) {
	p.ttl = ttl
	return "https://bucket.example/" + name + "?X-Amz-Signature=abc", nil
}

func blobRepo(t *testing.T) (*ImageRepo, []byte) {
	t.Helper()
	st, err := fileblob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	payload := bytes.Repeat([]byte("0123456789"), 1000)
	ctx := context.Background()
	for name, data := range map[string][]byte{"timestamp.json": []byte(`{"signed":{}}`), "targets/ab.img": payload} {
		if err := st.Put(ctx, name, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	return &ImageRepo{Blobs: st}, payload
}

func get(t *testing.T, ir *ImageRepo, name, rng string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("GET", "/x", nil)
	if rng != "" {
		r.Header.Set("Range", rng)
	}
	w := httptest.NewRecorder()
	if err := ir.serve(w, r, name, "application/octet-stream"); err != nil {
		if errors.Is(err, errNotFound) {
			w.Code = http.StatusNotFound
			return w
		}
		t.Fatalf("serve %s: %v", name, err)
	}
	return w
}

// TestImageRepoBlobs: a repository in a blob store is served like one in
// a directory: metadata read whole, payloads streamed with the ranges a
// resuming device asks for, and missing files 404.
func TestImageRepoBlobs(t *testing.T) {
	ir, payload := blobRepo(t)
	if b, err := ir.read("timestamp.json"); err != nil || string(b) != `{"signed":{}}` {
		t.Fatalf("read: %q %v", b, err)
	}
	tests := []struct {
		rng          string
		status       int
		body         []byte
		contentRange string
	}{
		{"", 200, payload, ""},
		{"bytes=4000-", 206, payload[4000:], "bytes 4000-9999/10000"},
		{"bytes=10-19", 206, payload[10:20], "bytes 10-19/10000"},
		{"bytes=9990-20000", 206, payload[9990:], "bytes 9990-9999/10000"},
		{"bytes=10000-", 416, nil, "bytes */10000"},
		{"bytes=20000-", 416, nil, "bytes */10000"},
		{"bytes=-100", 200, payload, ""},    // suffix range: not handled, whole payload
		{"bytes=0-1,5-6", 200, payload, ""}, // several ranges: whole payload
		{"items=0-1", 200, payload, ""},     // unknown unit
	}
	for _, tt := range tests {
		w := get(t, ir, "targets/ab.img", tt.rng)
		if w.Code != tt.status || w.Header().Get("Content-Range") != tt.contentRange ||
			(tt.body != nil && !bytes.Equal(w.Body.Bytes(), tt.body)) {
			t.Errorf("Range %q: %d, Content-Range %q, %d bytes", tt.rng, w.Code, w.Header().Get("Content-Range"), w.Body.Len())
		}
	}
	if w := get(t, ir, "targets/missing.img", ""); w.Code != 404 {
		t.Fatalf("missing payload: %d", w.Code)
	}
	if w := get(t, ir, "99.root.json", ""); w.Code != 404 {
		t.Fatalf("missing metadata: %d", w.Code)
	}
	if w := get(t, ir, "timestamp.json", "bytes=2-5"); w.Code != 206 || w.Body.String() != `sign` {
		t.Fatalf("metadata range: %d %q", w.Code, w.Body)
	}
}

// TestImageRepoPresign: with a presigning store, payloads are a redirect
// that must not be cached; metadata is still served by the server.
func TestImageRepoPresign(t *testing.T) {
	ir, _ := blobRepo(t)
	p := &fakePresigner{}
	ir.Presign, ir.PresignTTL = p, 3*time.Minute
	w := get(t, ir, "targets/ab.img", "bytes=5-")
	if w.Code != http.StatusFound || w.Header().Get("Location") != "https://bucket.example/targets/ab.img?X-Amz-Signature=abc" ||
		w.Header().Get("Cache-Control") != "no-store" || p.ttl != 3*time.Minute {
		t.Fatalf("redirect: %d %v ttl %v", w.Code, w.Header(), p.ttl)
	}
	if w := get(t, ir, "timestamp.json", ""); w.Code != 200 {
		t.Fatalf("metadata with a presigner: %d", w.Code)
	}
}

func TestBlobErrors(t *testing.T) {
	for code, want := range map[string]string{koshin.ENOTFOUND: koshin.ENOTFOUND, koshin.EUNAVAILABLE: koshin.EUNAVAILABLE, koshin.EINTERNAL: koshin.EINTERNAL} {
		if got := koshin.ErrorCode(blobError(koshin.Errorf(code, "x"))); got != want {
			t.Errorf("%s: %s", code, got)
		}
	}
}
