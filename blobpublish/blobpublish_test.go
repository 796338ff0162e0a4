package blobpublish_test

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/blobpublish"
	"github.com/koshin-ota/koshin/blobtest"
	"github.com/koshin-ota/koshin/fileblob"
)

// recorder is a BlobStore that records the order of Puts and can be told
// to fail one.
type recorder struct {
	koshin.BlobStore
	mu     sync.Mutex
	puts   []string
	failOn string
}

func (r *recorder) Put(ctx context.Context, name string, rd io.Reader, size int64) error {
	r.mu.Lock()
	fail := name == r.failOn
	r.mu.Unlock()
	if fail {
		return koshin.Errorf(koshin.EUNAVAILABLE, "injected failure")
	}
	if err := r.BlobStore.Put(ctx, name, rd, size); err != nil {
		return err
	}
	r.mu.Lock()
	r.puts = append(r.puts, name)
	r.mu.Unlock()
	return nil
}

func (r *recorder) reset() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.puts
	r.puts = nil
	return p
}

func newStore(t *testing.T) *recorder {
	s, err := fileblob.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &recorder{BlobStore: s}
}

// pubDir is a published repository directory with fake metadata:
// blobpublish never parses it.
type pubDir struct {
	t   *testing.T
	dir string
}

func newPubDir(t *testing.T) *pubDir {
	d := &pubDir{t, t.TempDir()}
	d.write("1.root.json", `{"root":1}`)
	d.write("root.json", `{"root":1}`)
	d.write("1.targets.json", `{"targets":1}`)
	d.write("1.snapshot.json", `{"snapshot":1}`)
	d.write("timestamp.json", `{"timestamp":1}`)
	d.payload("rootfs-1.img", "image one")
	return d
}

func (d *pubDir) write(rel, content string) {
	d.t.Helper()
	p := filepath.Join(d.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		d.t.Fatal(err)
	}
}

// payload writes targets/SHA256.NAME and returns its path.
func (d *pubDir) payload(name, content string) string {
	sum := sha256.Sum256([]byte(content))
	rel := "targets/" + hex.EncodeToString(sum[:]) + "." + name
	d.write(rel, content)
	return rel
}

func publish(t *testing.T, s koshin.BlobStore, d *pubDir, prefix string) blobpublish.Result {
	t.Helper()
	res, err := blobpublish.Dir(context.Background(), s, d.dir, prefix, blobpublish.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func content(t *testing.T, s koshin.BlobStore, name string) string {
	t.Helper()
	b, _ := blobtest.MustRead(t, s, name, 0)
	return string(b)
}

// Payloads first, then versioned metadata, snapshot, root.json and
// timestamp.json last.
func TestOrder(t *testing.T) {
	s, d := newStore(t), newPubDir(t)
	p2 := d.payload("app-1.tar", "application")
	d.write("2.root.json", `{"root":2}`)
	res := publish(t, s, d, "")
	got := s.reset()
	want := []string{
		p2, d.payload("rootfs-1.img", "image one"), // sorted by name
		"1.root.json", "1.targets.json", "2.root.json",
		"1.snapshot.json", "root.json", "timestamp.json",
	}
	slices.Sort(want[:2])
	if !slices.Equal(got, want) {
		t.Fatalf("upload order\n got %q\nwant %q", got, want)
	}
	if res.Uploaded != len(want) || res.Unchanged != 0 || res.Bytes == 0 {
		t.Fatalf("result %+v", res)
	}
}

// Uploading again uploads nothing; a new version uploads only what is new,
// timestamp.json last.
func TestIncremental(t *testing.T) {
	s, d := newStore(t), newPubDir(t)
	publish(t, s, d, "")
	s.reset()
	if res := publish(t, s, d, ""); res.Uploaded != 0 || res.Unchanged != 6 {
		t.Fatalf("second upload: %+v, puts %q", res, s.reset())
	}
	p := d.payload("rootfs-2.img", "image two")
	d.write("2.targets.json", `{"targets":2}`)
	d.write("2.snapshot.json", `{"snapshot":2}`)
	d.write("timestamp.json", `{"timestamp":2}`)
	res := publish(t, s, d, "")
	if got, want := s.reset(), []string{p, "2.targets.json", "2.snapshot.json", "timestamp.json"}; !slices.Equal(got, want) {
		t.Fatalf("incremental upload %q, want %q", got, want)
	}
	if res.Uploaded != 4 || res.Unchanged != 5 {
		t.Fatalf("result %+v", res)
	}
	if got := content(t, s, "timestamp.json"); got != `{"timestamp":2}` {
		t.Fatalf("timestamp = %s", got)
	}
	// A timestamp refresh of the same length is uploaded too.
	d.write("timestamp.json", `{"timestamp":3}`)
	publish(t, s, d, "")
	if got := s.reset(); !slices.Equal(got, []string{"timestamp.json"}) {
		t.Fatalf("refresh uploaded %q", got)
	}
}

// A versioned file already in the store with other content is never
// replaced, and the timestamp is not moved.
func TestImmutable(t *testing.T) {
	for _, other := range []string{`{"targets":X}`, `{"targets":"longer"}`} {
		s, d := newStore(t), newPubDir(t)
		publish(t, s, d, "")
		d.write("1.targets.json", other)
		d.write("timestamp.json", `{"timestamp":2}`)
		_, err := blobpublish.Dir(context.Background(), s, d.dir, "", blobpublish.Options{})
		blobtest.WantCode(t, err, koshin.ECONFLICT, "changed versioned file")
		if !strings.Contains(koshin.ErrorMessage(err), "1.targets.json") {
			t.Fatalf("message %q does not name the file", koshin.ErrorMessage(err))
		}
		if got := content(t, s, "1.targets.json"); got != `{"targets":1}` {
			t.Fatalf("versioned file replaced with %s", got)
		}
		if got := content(t, s, "timestamp.json"); got != `{"timestamp":1}` {
			t.Fatalf("timestamp moved to %s", got)
		}
	}
}

// A payload whose content does not match its name is not left in the store
// and stops the upload before the timestamp.
func TestCorruptPayload(t *testing.T) {
	s, d := newStore(t), newPubDir(t)
	sum := sha512.Sum512([]byte("real"))
	bad := "targets/" + hex.EncodeToString(sum[:]) + ".x.img"
	d.write(bad, "tampered")
	_, err := blobpublish.Dir(context.Background(), s, d.dir, "", blobpublish.Options{})
	blobtest.WantCode(t, err, koshin.EINVALID, "corrupt payload")
	if _, err := s.Stat(context.Background(), bad); koshin.ErrorCode(err) != koshin.ENOTFOUND {
		t.Fatalf("corrupt payload left in the store: %v", err)
	}
	if _, err := s.Stat(context.Background(), "timestamp.json"); koshin.ErrorCode(err) != koshin.ENOTFOUND {
		t.Fatalf("timestamp uploaded after a corrupt payload: %v", err)
	}
}

// An upload that fails midway leaves the old timestamp in place; the next
// run completes it.
func TestFailureMidway(t *testing.T) {
	s, d := newStore(t), newPubDir(t)
	publish(t, s, d, "")
	d.write("2.targets.json", `{"targets":2}`)
	d.write("2.snapshot.json", `{"snapshot":2}`)
	d.write("timestamp.json", `{"timestamp":2}`)
	s.failOn = "2.snapshot.json"
	_, err := blobpublish.Dir(context.Background(), s, d.dir, "", blobpublish.Options{})
	blobtest.WantCode(t, err, koshin.EUNAVAILABLE, "injected failure")
	if got := content(t, s, "timestamp.json"); got != `{"timestamp":1}` {
		t.Fatalf("timestamp moved to %s after a failed upload", got)
	}
	s.failOn = ""
	s.reset()
	publish(t, s, d, "")
	if got := s.reset(); !slices.Equal(got, []string{"2.snapshot.json", "timestamp.json"}) {
		t.Fatalf("retry uploaded %q", got)
	}
}

func TestPrefixAndProgress(t *testing.T) {
	s, d := newStore(t), newPubDir(t)
	var seen []string
	_, err := blobpublish.Dir(context.Background(), s, d.dir, "fleet-a/image", blobpublish.Options{
		Progress: func(name string, size int64, uploaded bool) {
			if !uploaded || size <= 0 {
				t.Errorf("progress %s %d %v", name, size, uploaded)
			}
			seen = append(seen, name)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 6 || seen[5] != "fleet-a/image/timestamp.json" {
		t.Fatalf("progress saw %q", seen)
	}
	if got := content(t, s, "fleet-a/image/1.root.json"); got != `{"root":1}` {
		t.Fatalf("root under prefix = %q", got)
	}
	_, err = blobpublish.Dir(context.Background(), s, d.dir, "../x", blobpublish.Options{})
	blobtest.WantCode(t, err, koshin.EINVALID, "bad prefix")
}

// Only the repository layout is published; leftovers of an interrupted
// local publish (dot files) are ignored, anything else is refused.
func TestUnexpectedFiles(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(*pubDir)
		ok    bool
	}{
		{"temp file", func(d *pubDir) { d.write(".timestamp.json.tmp123", "x"); d.write("targets/.x.tmp1", "y") }, true},
		{"stray file", func(d *pubDir) { d.write("index.html", "<html>") }, false},
		{"stray dir", func(d *pubDir) { d.write("keys/targets.key", "secret") }, false},
		{"versioned timestamp", func(d *pubDir) { d.write("3.timestamp.json", "{}") }, false},
		{"payload without hash", func(d *pubDir) { d.write("targets/rootfs.img", "x") }, false},
		{"no timestamp", func(d *pubDir) { os.Remove(filepath.Join(d.dir, "timestamp.json")) }, false},
		{"symlink", func(d *pubDir) { os.Symlink("/etc/passwd", filepath.Join(d.dir, "2.root.json")) }, false},
	} {
		s, d := newStore(t), newPubDir(t)
		tt.setup(d)
		_, err := blobpublish.Dir(context.Background(), s, d.dir, "", blobpublish.Options{})
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if !tt.ok && len(s.reset()) != 0 {
			t.Errorf("%s: uploaded files before refusing", tt.name)
		}
	}
	_, err := blobpublish.Dir(context.Background(), newStore(t), filepath.Join(t.TempDir(), "missing"), "", blobpublish.Options{})
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing directory: %v", err)
	}
}

func TestCacheControl(t *testing.T) {
	const forever = "public, max-age=31536000, immutable"
	sum := strings.Repeat("ab", 32)
	for name, want := range map[string]string{
		"timestamp.json":                   "no-cache",
		"image/timestamp.json":             "no-cache",
		"root.json":                        "no-cache",
		"3.root.json":                      forever,
		"image/12.snapshot.json":           forever,
		"targets/" + sum + ".rootfs-1.img": forever,
		"a/targets/" + sum + ".x":          forever,
		"targets/rootfs.img":               "",
		"other.txt":                        "",
	} {
		if got := blobpublish.CacheControl(name); got != want {
			t.Errorf("CacheControl(%q) = %q, want %q", name, got, want)
		}
	}
}
