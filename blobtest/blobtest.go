// Package blobtest is the conformance suite every koshin.BlobStore passes:
// package fileblob always, package s3 against an in-process gofakes3 and,
// in CI, against a real S3 server (versitygw). One test body keeps the
// backends interchangeable, like storetest does for the databases.
//
//	func TestConformance(t *testing.T) {
//		blobtest.Run(t, func(t *testing.T) koshin.BlobStore { return newEmptyStore(t) })
//	}
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

// LargeSize is the size of the suite's large blob: more than two parts of
// 5 MiB, S3's smallest multipart part size, so a store configured with
// that part size uploads it in three parts (the last one short).
const LargeSize = 2*5<<20 + 123_457

// Run runs the suite. open returns a new, empty store for each subtest and
// arranges its clean-up with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) koshin.BlobStore) {
	tests := []struct {
		name string
		fn   func(*testing.T, koshin.BlobStore)
	}{
		{"PutOpen", testPutOpen},
		{"UnknownSize", testUnknownSize},
		{"Empty", testEmpty},
		{"Range", testRange},
		{"Overwrite", testOverwrite},
		{"LengthMismatch", testLengthMismatch},
		{"ReaderError", testReaderError},
		{"Missing", testMissing},
		{"Delete", testDelete},
		{"List", testList},
		{"ListEarlyStop", testListEarlyStop},
		{"InvalidNames", testInvalidNames},
		{"Cancelled", testCancelled},
		{"Large", testLarge},
		{"ConcurrentOverwrite", testConcurrentOverwrite},
		{"Presign", testPresign},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// Data returns n deterministic pseudo-random bytes for seed.
func Data(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	r.Read(b)
	return b
}

// MustPut stores data under name with its known size.
func MustPut(tb testing.TB, s koshin.BlobStore, name string, data []byte) {
	tb.Helper()
	if err := s.Put(context.Background(), name, onlyReader{bytes.NewReader(data)}, int64(len(data))); err != nil {
		tb.Fatalf("Put(%q): %v", name, err)
	}
}

// MustRead returns the content of name from offset and the blob's size.
func MustRead(tb testing.TB, s koshin.BlobStore, name string, offset int64) ([]byte, int64) {
	tb.Helper()
	rc, size, err := s.Open(context.Background(), name, offset)
	if err != nil {
		tb.Fatalf("Open(%q, %d): %v", name, offset, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		tb.Fatalf("read %q from %d: %v", name, offset, err)
	}
	return b, size
}

// WantCode fails unless err carries the koshin error code want.
func WantCode(tb testing.TB, err error, want, what string) {
	tb.Helper()
	if got := koshin.ErrorCode(err); got != want {
		tb.Fatalf("%s: error code %q (%v), want %q", what, got, err, want)
	}
}

// onlyReader hides io.ReaderAt, io.Seeker and io.WriterTo, so stores are
// tested with plain streams as an HTTP request body would give them.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func checkContent(t *testing.T, s koshin.BlobStore, name string, want []byte) {
	t.Helper()
	got, size := MustRead(t, s, name, 0)
	if size != int64(len(want)) {
		t.Fatalf("Open(%q) size = %d, want %d", name, size, len(want))
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("content of %q: %d bytes (sha256 %x), want %d bytes (sha256 %x)",
			name, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
}

func testPutOpen(t *testing.T, s koshin.BlobStore) {
	data := Data(1, 1000)
	before := time.Now().Add(-time.Minute)
	MustPut(t, s, "targets/0123abcd.fw-1.2+build_3.img", data)
	checkContent(t, s, "targets/0123abcd.fw-1.2+build_3.img", data)
	MustPut(t, s, "1.root.json", []byte(`{"signed":{}}`))
	checkContent(t, s, "1.root.json", []byte(`{"signed":{}}`))

	bi, err := s.Stat(context.Background(), "targets/0123abcd.fw-1.2+build_3.img")
	if err != nil {
		t.Fatal(err)
	}
	if bi.Name != "targets/0123abcd.fw-1.2+build_3.img" || bi.Size != 1000 {
		t.Fatalf("Stat = %+v, want name and size 1000", bi)
	}
	if bi.ModTime.Before(before) || bi.ModTime.After(time.Now().Add(time.Minute)) {
		t.Fatalf("Stat ModTime = %v, want about now", bi.ModTime)
	}
}

func testUnknownSize(t *testing.T, s koshin.BlobStore) {
	data := Data(2, 70_000)
	if err := s.Put(context.Background(), "u/blob", onlyReader{bytes.NewReader(data)}, -1); err != nil {
		t.Fatal(err)
	}
	checkContent(t, s, "u/blob", data)
}

func testEmpty(t *testing.T, s koshin.BlobStore) {
	MustPut(t, s, "empty", nil)
	checkContent(t, s, "empty", nil)
	if err := s.Put(context.Background(), "empty2", onlyReader{bytes.NewReader(nil)}, -1); err != nil {
		t.Fatal(err)
	}
	checkContent(t, s, "empty2", nil)
}

func testRange(t *testing.T, s koshin.BlobStore) {
	data := Data(3, 4096)
	MustPut(t, s, "r", data)
	for _, off := range []int64{0, 1, 1000, 4095, 4096} {
		got, size := MustRead(t, s, "r", off)
		if size != 4096 || !bytes.Equal(got, data[off:]) {
			t.Fatalf("Open at %d: %d bytes, size %d; want %d bytes, size 4096", off, len(got), size, 4096-off)
		}
	}
	for _, off := range []int64{-1, 4097, 1 << 40} {
		rc, _, err := s.Open(context.Background(), "r", off)
		if err == nil {
			rc.Close()
		}
		WantCode(t, err, koshin.EINVALID, fmt.Sprintf("Open at %d", off))
	}
	// A short read from the middle, as a resumed download does it.
	rc, _, err := s.Open(context.Background(), "r", 2000)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 10)
	if _, err := io.ReadFull(rc, buf); err != nil || !bytes.Equal(buf, data[2000:2010]) {
		t.Fatalf("ReadFull at 2000 = %x, %v; want %x", buf, err, data[2000:2010])
	}
}

func testOverwrite(t *testing.T, s koshin.BlobStore) {
	MustPut(t, s, "timestamp.json", Data(4, 3000))
	v2 := Data(5, 1200)
	MustPut(t, s, "timestamp.json", v2)
	checkContent(t, s, "timestamp.json", v2)
	if bi, err := s.Stat(context.Background(), "timestamp.json"); err != nil || bi.Size != 1200 {
		t.Fatalf("Stat after overwrite = %+v, %v; want size 1200", bi, err)
	}
}

func testLengthMismatch(t *testing.T, s koshin.BlobStore) {
	ctx := context.Background()
	data := Data(6, 500)
	err := s.Put(ctx, "short", onlyReader{bytes.NewReader(data)}, 501)
	WantCode(t, err, koshin.EINVALID, "Put of a short stream")
	err = s.Put(ctx, "long", onlyReader{bytes.NewReader(data)}, 499)
	WantCode(t, err, koshin.EINVALID, "Put of a long stream")
	err = s.Put(ctx, "long0", onlyReader{bytes.NewReader(data)}, 0)
	WantCode(t, err, koshin.EINVALID, "Put of a stream announced empty")
	for _, name := range []string{"short", "long", "long0"} {
		_, err := s.Stat(ctx, name)
		WantCode(t, err, koshin.ENOTFOUND, "Stat after a failed Put of "+name)
	}
	// A failed overwrite keeps the old content.
	old := Data(7, 300)
	MustPut(t, s, "kept", old)
	err = s.Put(ctx, "kept", onlyReader{bytes.NewReader(data)}, 100)
	WantCode(t, err, koshin.EINVALID, "overwrite with a long stream")
	checkContent(t, s, "kept", old)
	WantCode(t, s.Put(ctx, "kept", bytes.NewReader(nil), -2), koshin.EINVALID, "Put with size -2")
}

var errBroken = errors.New("broken stream")

// brokenReader yields n bytes, then fails.
type brokenReader struct {
	r io.Reader
	n int
}

func (b *brokenReader) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, errBroken
	}
	p = p[:min(len(p), b.n)]
	n, err := b.r.Read(p)
	b.n -= n
	return n, err
}

func testReaderError(t *testing.T, s koshin.BlobStore) {
	ctx := context.Background()
	old := Data(8, 100)
	MustPut(t, s, "b", old)
	for _, size := range []int64{2000, -1} {
		err := s.Put(ctx, "b", &brokenReader{bytes.NewReader(Data(9, 2000)), 1000}, size)
		if err == nil {
			t.Fatalf("Put from a failing stream (size %d) succeeded", size)
		}
		checkContent(t, s, "b", old)
	}
}

func testMissing(t *testing.T, s koshin.BlobStore) {
	ctx := context.Background()
	MustPut(t, s, "dir/present", []byte("x"))
	for _, name := range []string{"absent", "dir/absent", "dir", "dir/present/below", "nodir/x"} {
		rc, _, err := s.Open(ctx, name, 0)
		if err == nil {
			rc.Close()
		}
		WantCode(t, err, koshin.ENOTFOUND, "Open("+name+")")
		if !strings.Contains(koshin.ErrorMessage(err), name) {
			t.Errorf("Open(%q) message %q does not name the blob", name, koshin.ErrorMessage(err))
		}
		_, err = s.Stat(ctx, name)
		WantCode(t, err, koshin.ENOTFOUND, "Stat("+name+")")
		if err := s.Delete(ctx, name); err != nil {
			t.Fatalf("Delete(%q) of a missing blob: %v", name, err)
		}
	}
	checkContent(t, s, "dir/present", []byte("x"))
}

func testDelete(t *testing.T, s koshin.BlobStore) {
	ctx := context.Background()
	MustPut(t, s, "d/one", []byte("1"))
	MustPut(t, s, "d/two", []byte("22"))
	if err := s.Delete(ctx, "d/one"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Stat(ctx, "d/one")
	WantCode(t, err, koshin.ENOTFOUND, "Stat after Delete")
	if err := s.Delete(ctx, "d/one"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if got := names(t, s, "d/"); !slices.Equal(got, []string{"d/two"}) {
		t.Fatalf("List after Delete = %q, want [d/two]", got)
	}
	checkContent(t, s, "d/two", []byte("22"))
}

func names(t *testing.T, s koshin.BlobStore, prefix string) []string {
	t.Helper()
	var out []string
	for bi, err := range s.List(context.Background(), prefix) {
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		out = append(out, bi.Name)
	}
	return out
}

func testList(t *testing.T, s koshin.BlobStore) {
	all := []string{"1.root.json", "2.root.json", "a.b", "a/b", "a/c/d", "b", "targets/ab1", "targets/ab2", "targets/b", "timestamp.json"}
	for i, n := range slices.Backward(all) {
		MustPut(t, s, n, Data(uint64(i), i+1))
	}
	for _, tt := range []struct {
		prefix string
		want   []string
	}{
		{"", all}, // byte-wise order: "a.b" < "a/b" because '.' < '/'
		{"a", []string{"a.b", "a/b", "a/c/d"}},
		{"a/", []string{"a/b", "a/c/d"}},
		{"a/c/", []string{"a/c/d"}},
		{"targets/ab", []string{"targets/ab1", "targets/ab2"}},
		{"targets/", []string{"targets/ab1", "targets/ab2", "targets/b"}},
		{"t", []string{"targets/ab1", "targets/ab2", "targets/b", "timestamp.json"}},
		{"1.", []string{"1.root.json"}},
		{"zzz", nil},
		{"zzz/", nil},
		{"a/c/d", []string{"a/c/d"}},
	} {
		if got := names(t, s, tt.prefix); !slices.Equal(got, tt.want) {
			t.Errorf("List(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
	for bi, err := range s.List(context.Background(), "a/") {
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{"a/b": 4, "a/c/d": 5}[bi.Name]
		if bi.Size != want || bi.ModTime.IsZero() {
			t.Errorf("List entry %+v, want size %d and a time", bi, want)
		}
	}
	for _, bad := range []string{"../", "/a", "a//", "a/../b", ".x"} {
		var got error
		for _, err := range s.List(context.Background(), bad) {
			got = err
		}
		WantCode(t, got, koshin.EINVALID, fmt.Sprintf("List(%q)", bad))
	}
}

func testListEarlyStop(t *testing.T, s koshin.BlobStore) {
	for i := range 5 {
		MustPut(t, s, fmt.Sprintf("e/%d", i), []byte{byte(i)})
	}
	n := 0
	for _, err := range s.List(context.Background(), "e/") {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 2 {
			break
		}
	}
	if got := names(t, s, "e/"); len(got) != 5 {
		t.Fatalf("List after an early stop = %q, want 5 names", got)
	}
}

// InvalidNames are names every store refuses with EINVALID.
var InvalidNames = []string{
	"", "/abs", "trailing/", "a//b", ".", "..", "../escape", "a/../../b", "a/./b", ".hidden",
	"a/.tmp", `back\slash`, "space name", "nul\x00", "ctl\n", "ünïcode", "-dash", "a/_under",
	"q?x", "h#x", "pct%2F", strings.Repeat("a", koshin.MaxBlobSegmentLen+1),
	strings.Repeat("abcdefgh/", koshin.MaxBlobNameLen/9) + "abcdefgh", // valid parts, too long
}

func testInvalidNames(t *testing.T, s koshin.BlobStore) {
	ctx := context.Background()
	for _, name := range InvalidNames {
		WantCode(t, s.Put(ctx, name, bytes.NewReader([]byte("x")), 1), koshin.EINVALID, fmt.Sprintf("Put(%q)", name))
		rc, _, err := s.Open(ctx, name, 0)
		if err == nil {
			rc.Close()
		}
		WantCode(t, err, koshin.EINVALID, fmt.Sprintf("Open(%q)", name))
		_, err = s.Stat(ctx, name)
		WantCode(t, err, koshin.EINVALID, fmt.Sprintf("Stat(%q)", name))
		WantCode(t, s.Delete(ctx, name), koshin.EINVALID, fmt.Sprintf("Delete(%q)", name))
		if p, ok := s.(koshin.BlobPresigner); ok && name != "" {
			_, err := p.PresignGet(ctx, name, time.Minute)
			WantCode(t, err, koshin.EINVALID, fmt.Sprintf("PresignGet(%q)", name))
		}
	}
	if got := names(t, s, ""); len(got) != 0 {
		t.Fatalf("store holds %q after invalid names", got)
	}
}

func testCancelled(t *testing.T, s koshin.BlobStore) {
	MustPut(t, s, "c", []byte("content"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Put(ctx, "c2", bytes.NewReader([]byte("x")), 1); err == nil {
		t.Fatal("Put with a cancelled context succeeded")
	}
	if _, err := s.Stat(context.Background(), "c2"); koshin.ErrorCode(err) != koshin.ENOTFOUND {
		t.Fatalf("Stat after a cancelled Put: %v, want ENOTFOUND", err)
	}
	if rc, _, err := s.Open(ctx, "c", 0); err == nil {
		_, rerr := io.ReadAll(rc)
		rc.Close()
		if rerr == nil {
			t.Fatal("Open and read with a cancelled context succeeded")
		}
	}
	// Cancelling midway through an upload stores nothing.
	ctx, cancel = context.WithCancel(context.Background())
	r := &cancelAfter{r: bytes.NewReader(Data(10, 1<<20)), n: 300_000, cancel: cancel}
	if err := s.Put(ctx, "c3", r, 1<<20); err == nil {
		t.Fatal("Put cancelled midway succeeded")
	}
	if _, err := s.Stat(context.Background(), "c3"); koshin.ErrorCode(err) != koshin.ENOTFOUND {
		t.Fatalf("Stat after a Put cancelled midway: %v, want ENOTFOUND", err)
	}
}

// cancelAfter cancels its context once n bytes have been read, and then
// blocks its reader briefly so that the store notices.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
		return 0, context.Canceled
	}
	p = p[:min(len(p), c.n)]
	n, err := c.r.Read(p)
	c.n -= n
	return n, err
}

func testLarge(t *testing.T, s koshin.BlobStore) {
	if testing.Short() {
		t.Skip("large blob skipped in -short mode")
	}
	data := Data(11, LargeSize)
	MustPut(t, s, "large/known", data)
	checkContent(t, s, "large/known", data)
	if err := s.Put(context.Background(), "large/unknown", onlyReader{bytes.NewReader(data)}, -1); err != nil {
		t.Fatal(err)
	}
	checkContent(t, s, "large/unknown", data)
	// Ranges across part boundaries (5 MiB) and from the last part.
	for _, off := range []int64{5<<20 - 1, 5 << 20, 10<<20 + 7, LargeSize - 1} {
		got, size := MustRead(t, s, "large/known", off)
		if size != LargeSize || !bytes.Equal(got, data[off:]) {
			t.Fatalf("large blob from %d: %d bytes, want %d", off, len(got), LargeSize-off)
		}
	}
	// A long stream announced shorter is refused even when it spans parts.
	err := s.Put(context.Background(), "large/long", onlyReader{bytes.NewReader(data)}, LargeSize-1)
	WantCode(t, err, koshin.EINVALID, "large Put of a long stream")
	if _, err := s.Stat(context.Background(), "large/long"); koshin.ErrorCode(err) != koshin.ENOTFOUND {
		t.Fatalf("Stat after a failed large Put: %v, want ENOTFOUND", err)
	}
}

// testConcurrentOverwrite checks that readers see one whole version while
// writers replace a blob.
func testConcurrentOverwrite(t *testing.T, s koshin.BlobStore) {
	versions := [][]byte{Data(12, 64<<10), Data(13, 48<<10)}
	MustPut(t, s, "cc", versions[0])
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 2 {
		wg.Go(func() {
			for range 5 {
				if err := s.Put(context.Background(), "cc", bytes.NewReader(versions[w]), int64(len(versions[w]))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 10 {
			rc, _, err := s.Open(context.Background(), "cc", 0)
			if err != nil {
				errs <- err
				return
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]) {
				errs <- fmt.Errorf("read a mix of versions (%d bytes)", len(got))
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// testPresign runs for stores that implement koshin.BlobPresigner: the URL
// serves the blob to a plain HTTP client, with Range.
func testPresign(t *testing.T, s koshin.BlobStore) {
	p, ok := s.(koshin.BlobPresigner)
	if !ok {
		t.Skip("store does not presign")
	}
	ctx := context.Background()
	data := Data(14, 10_000)
	MustPut(t, s, "targets/p+1.img", data)
	u, err := p.PresignGet(ctx, "targets/p+1.img", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got := httpGet(t, u, ""); !bytes.Equal(got, data) {
		t.Fatalf("GET presigned URL: %d bytes, want %d", len(got), len(data))
	}
	if got := httpGet(t, u, "bytes=9000-"); !bytes.Equal(got, data[9000:]) {
		t.Fatalf("ranged GET presigned URL: %d bytes, want 1000", len(got))
	}
	for _, ttl := range []time.Duration{0, -time.Second, 8 * 24 * time.Hour} {
		_, err := p.PresignGet(ctx, "targets/p+1.img", ttl)
		WantCode(t, err, koshin.EINVALID, fmt.Sprintf("PresignGet with ttl %v", ttl))
	}
}

func httpGet(t *testing.T, url, rng string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := http.StatusOK
	if rng != "" {
		req.Header.Set("Range", rng)
		want = http.StatusPartialContent
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("GET %s (Range %q): %s, want %d: %.200s", url, rng, resp.Status, want, b)
	}
	return b
}
