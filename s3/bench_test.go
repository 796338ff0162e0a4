package s3_test

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/s3"
	"github.com/koshin-ota/koshin/trust/verify"
)

// BenchmarkPresignedDownload is the device's download path with payloads
// in a bucket: a presigned GET URL from versitygw on 127.0.0.1, read by
// trust/verify's HTTPFetcher (stall timer and throughput floor) through a
// PayloadReader that checks length and hashes, as the agent does. It
// needs an S3 server (see main_test.go); s3/BENCHMARKS.md has the figures:
//
//	eval "$(.ci/start-versitygw.sh)"
//	go test -run '^$' -bench PresignedDownload -benchtime 3x -count 3 ./s3
//
// KOSHIN_BENCH_S3_MIB sets the payload size (default 256 MiB). Sub-benchmarks:
//
//	verified    sha256 + sha512 (what `koshin repo` signs), as devices check it
//	sha256      sha256 only
//	raw         HTTPFetcher alone, no verification: the transfer itself
//	fileserver  baseline: the same verified read from net/http's ServeContent
//	            of a local file (how httpapi serves a published directory,
//	            without TLS)
//	raw-4x      four devices at once, unverified: what the server delivers
//	            in aggregate (MB/s counts all four)
func BenchmarkPresignedDownload(b *testing.B) {
	cfg := integrationConfig(b)
	size := int64(256) << 20
	if v := os.Getenv("KOSHIN_BENCH_S3_MIB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("KOSHIN_BENCH_S3_MIB=%q", v)
		}
		size = int64(n) << 20
	}
	store := mustOpen(b, cfg)
	ctx := context.Background()
	const name = "targets/bench.img"
	// Generate, hash and upload in one stream, and keep a local copy for
	// the baseline.
	local := filepath.Join(b.TempDir(), "bench.img")
	f, err := os.Create(local)
	if err != nil {
		b.Fatal(err)
	}
	h256, h512 := sha256.New(), sha512.New()
	src := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{7}), size), io.MultiWriter(h256, h512, f))
	if err := store.Put(ctx, name, src, size); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	both := verify.Install{Name: "bench.img", Length: size,
		Hashes: map[string][]byte{"sha256": h256.Sum(nil), "sha512": h512.Sum(nil)}}
	only256 := verify.Install{Name: "bench.img", Length: size, Hashes: map[string][]byte{"sha256": both.Hashes["sha256"]}}

	fetcher := &verify.HTTPFetcher{MinRate: 64 << 10, Window: 30 * time.Second}
	presigned := func(b *testing.B) string {
		u, err := store.PresignGet(ctx, name, 5*time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		return u
	}
	fileServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(local)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "", time.Time{}, f)
	}))
	defer fileServer.Close()

	for _, bm := range []struct {
		name string
		url  func(*testing.B) string
		in   *verify.Install
	}{
		{"verified", presigned, &both},
		{"sha256", presigned, &only256},
		{"raw", presigned, nil},
		{"fileserver", func(*testing.B) string { return fileServer.URL + "/bench.img" }, &both},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(size)
			buf := make([]byte, 256<<10)
			for b.Loop() {
				rc, err := fetcher.Open(ctx, bm.url(b), 0)
				if err != nil {
					b.Fatal(err)
				}
				var r io.Reader = rc
				if bm.in != nil {
					r = verify.NewPayloadReader(rc, *bm.in, verify.PayloadOptions{MinRate: 64 << 10, Window: 30 * time.Second})
				}
				n, err := drain(r, buf)
				rc.Close()
				if err != nil || n != size {
					b.Fatalf("read %d of %d bytes: %v", n, size, err)
				}
			}
		})
	}
	b.Run("raw-4x", func(b *testing.B) {
		const devices = 4
		b.SetBytes(devices * size)
		for b.Loop() {
			var wg sync.WaitGroup
			errs := make(chan error, devices)
			for range devices {
				wg.Go(func() {
					rc, err := fetcher.Open(ctx, presigned(b), 0)
					if err != nil {
						errs <- err
						return
					}
					defer rc.Close()
					if n, err := drain(rc, make([]byte, 256<<10)); err != nil || n != size {
						errs <- fmt.Errorf("read %d of %d bytes: %v", n, size, err)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
		}
	})
}

// drain reads r to its end in len(buf) reads (io.Copy to io.Discard would
// use io.Discard's 8 KiB buffers instead).
func drain(r io.Reader, buf []byte) (int64, error) {
	var total int64
	for {
		n, err := r.Read(buf)
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// BenchmarkPut is the upload side (`koshin repo publish-s3`, a server
// storing a payload): a streamed multipart upload of a payload of known
// size with the default 16 MiB parts, holding one part in memory.
//
//	go test -run '^$' -bench 'Put$' -benchtime 3x -count 3 ./s3
func BenchmarkPut(b *testing.B) {
	cfg := integrationConfig(b)
	cfg.PartSize = s3.DefaultPartSize
	store := mustOpen(b, cfg)
	size := int64(256) << 20
	b.SetBytes(size)
	for b.Loop() {
		src := io.LimitReader(rand.NewChaCha8([32]byte{9}), size)
		if err := store.Put(context.Background(), "targets/put-bench.img", src, size); err != nil {
			b.Fatal(err)
		}
	}
}
