package bundle_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/agent/bundle"
	"github.com/koshin-ota/koshin/trust"
)

type rawEntry struct {
	name string
	typ  byte
	data string
	pax  map[string]string
}

// rawTar writes entries as given, without the Writer's checks.
func rawTar(t testing.TB, entries ...rawEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Size: int64(len(e.data)), Mode: 0o644, PAXRecords: e.pax}
		if typ == tar.TypeSymlink {
			h.Size, h.Linkname = 0, "/etc/shadow"
		}
		if typ == tar.TypeDir {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(e.data))
		}
	}
	tw.Close()
	return buf.Bytes()
}

var manifest = rawEntry{name: bundle.ManifestName, data: `{"format":1}`}

func TestReadIndexesEntries(t *testing.T) {
	data := rawTar(t, manifest, rawEntry{name: "image", typ: tar.TypeDir},
		rawEntry{name: "image/timestamp.json", data: "ts"}, rawEntry{name: "targets/abc.img", data: "0123456789"})
	b, err := bundle.Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := b.Fetch(ctx, bundle.ImageURL+"/timestamp.json", 100)
	if err != nil || string(got) != "ts" {
		t.Fatalf("fetch: %q, %v", got, err)
	}
	if _, err := b.Fetch(ctx, bundle.ImageURL+"/timestamp.json", 1); !errors.Is(err, trust.ErrTooLong) {
		t.Fatalf("fetch over the limit: %v, want ErrTooLong", err)
	}
	if _, err := b.Fetch(ctx, bundle.ImageURL+"/2.root.json", 100); !errors.Is(err, trust.ErrNotFound) {
		t.Fatalf("fetch of a missing file: %v, want ErrNotFound (ends the root walk)", err)
	}
	if _, err := b.Fetch(ctx, bundle.TargetsURL+"/abc.img", 100); !errors.Is(err, trust.ErrNotFound) {
		t.Fatalf("payload fetched as metadata: %v", err)
	}
	rc, err := b.Open(ctx, bundle.TargetsURL+"/abc.img", 4)
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(rc)
	if string(rest) != "456789" {
		t.Fatalf("payload from offset 4: %q", rest)
	}
	if _, err := b.Instruction("dev-1"); !errors.Is(err, trust.ErrNoInstruction) {
		t.Fatalf("instruction: %v, want ErrNoInstruction", err)
	}
}

func TestReadRejectsMalformed(t *testing.T) {
	good := rawTar(t, manifest, rawEntry{name: "image/timestamp.json", data: "x"})
	for name, data := range map[string][]byte{
		"empty":                {},
		"not a tar":            []byte("hello, this is not a tar file at all"),
		"no manifest":          rawTar(t, rawEntry{name: "image/timestamp.json", data: "x"}),
		"manifest not first":   rawTar(t, rawEntry{name: "image/timestamp.json", data: "x"}, manifest),
		"directory first":      rawTar(t, rawEntry{name: "image", typ: tar.TypeDir}, manifest),
		"unknown format":       rawTar(t, rawEntry{name: bundle.ManifestName, data: `{"format":2}`}),
		"unknown field":        rawTar(t, rawEntry{name: bundle.ManifestName, data: `{"format":1,"run":"sh"}`}),
		"manifest not JSON":    rawTar(t, rawEntry{name: bundle.ManifestName, data: `format=1`}),
		"symlink":              rawTar(t, manifest, rawEntry{name: "image/root.json", typ: tar.TypeSymlink}),
		"duplicate":            rawTar(t, manifest, rawEntry{name: "a", data: "1"}, rawEntry{name: "a", data: "2"}),
		"dot-dot":              rawTar(t, manifest, rawEntry{name: "../etc/passwd", data: "x"}),
		"absolute":             rawTar(t, manifest, rawEntry{name: "/etc/passwd", data: "x"}),
		"control character":    rawTar(t, manifest, rawEntry{name: "image/a\nb", data: "x"}),
		"truncated":            good[:len(good)-1536],
		"truncated in payload": rawTar(t, manifest, rawEntry{name: "t", data: string(make([]byte, 4096))})[:2048],
	} {
		if _, err := bundle.Read(bytes.NewReader(data), int64(len(data))); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := bundle.Read(bytes.NewReader(good), int64(len(good))); err != nil {
		t.Fatalf("well-formed bundle refused: %v", err)
	}
	sparse := sparseTar(t)
	if _, err := bundle.Read(bytes.NewReader(sparse), int64(len(sparse))); err == nil || !strings.Contains(err.Error(), "sparse") {
		t.Errorf("sparse file: %v, want refused as sparse", err)
	}
}

// sparseTar is a bundle whose payload is a PAX 1.0 sparse file: the bytes
// stored are a sparse map followed by data, not the file's content.
// tar.Writer cannot write one, so the pax header's type is patched in.
func sparseTar(t *testing.T) []byte {
	t.Helper()
	var recs string
	for _, kv := range [][2]string{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"},
		{"GNU.sparse.name", "targets/x"}, {"GNU.sparse.realsize", "1"}} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 2
		recs += strconv.Itoa(n) + rec
	}
	sparseMap := "1\n0\n1\n" + strings.Repeat("\x00", 512-6) + "x"
	data := rawTar(t, manifest, rawEntry{name: "PaxHeaders/x", data: recs}, rawEntry{name: "GNUSparseFile/x", data: sparseMap})
	hdr := data[1024 : 1024+512] // after the manifest's header and data blocks
	hdr[156] = tar.TypeXHeader
	copy(hdr[148:156], "        ")
	sum := 0
	for _, c := range hdr {
		sum += int(c)
	}
	copy(hdr[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return data
}

// FuzzRead feeds arbitrary bytes to the reader: it must not panic, and
// whatever it indexes must lie inside the file.
func FuzzRead(f *testing.F) {
	f.Add(rawTar(f, manifest, rawEntry{name: "image/timestamp.json", data: "x"}, rawEntry{name: "targets/p", data: "payload"}))
	f.Add(rawTar(f, manifest, rawEntry{name: "d", typ: tar.TypeDir}, rawEntry{name: "director/targets.json", data: "{}"}))
	f.Add([]byte("not a bundle"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := bundle.Read(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			// Every refusal is a format error, hence an invalid update.
			if !errors.Is(err, bundle.ErrFormat) || !errors.Is(err, trust.ErrInvalid) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		ctx := context.Background()
		for _, name := range b.Names() {
			rc, err := b.Open(ctx, bundle.URLPrefix+name, 0)
			if err != nil {
				continue // not a payload
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Fatalf("indexed entry %q unreadable: %v", name, err)
			}
		}
		b.Instruction("dev-1")
	})
}

// A bundle assembled with GNU tar, as docs/integrator-guide.md shows,
// reads back.
func TestGNUTarBundle(t *testing.T) {
	tarPath, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("no tar here")
	}
	dir := t.TempDir()
	for name, data := range map[string]string{bundle.ManifestName: `{"format":1}`, "image/1.root.json": "{}",
		"director/targets.json": "{}", "targets/abc.img": "payload"} {
		p := filepath.Join(dir, "b", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(data), 0o644)
	}
	out := filepath.Join(dir, "update.koshin")
	cmd := exec.Command(tarPath, "--format=pax", "-C", filepath.Join(dir, "b"), "-cf", out, bundle.ManifestName, "image", "director", "targets")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("tar without --format=pax: %v %s", err, b)
	}
	b, err := bundle.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rc, err := b.Open(context.Background(), bundle.TargetsURL+"/abc.img", 3)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	if string(got) != "load" {
		t.Fatalf("payload from offset 3: %q", got)
	}
}
