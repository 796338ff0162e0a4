package verify_test

import (
	"crypto/sha256"
	"hash"
	"io"
	"sync"
	"testing"

	"github.com/koshin-ota/koshin/trust/verify"
)

// Payload verification must cost no more than hashing itself (≥ 0.9× plain
// SHA-256): compare BenchmarkPayloadReader with BenchmarkSHA256, both over
// 1 GiB read in 64 KiB buffers from the same in-memory source.
//
//	go test -run '^$' -bench 'PayloadReader|SHA256' -benchtime 3x ./trust/verify
const benchSize = 1 << 30

// patternReader yields n bytes of a repeating pattern without allocating.
type patternReader struct {
	pat []byte
	off int
	n   int64
}

var benchPattern = testPayload(1 << 20)

func newPatternReader() *patternReader { return &patternReader{pat: benchPattern, n: benchSize} }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.n == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n {
		b = b[:p.n]
	}
	k := copy(b, p.pat[p.off:])
	p.off = (p.off + k) % len(p.pat)
	p.n -= int64(k)
	return k, nil
}

var benchInstall = sync.OnceValue(func() verify.Install {
	h := sha256.New()
	drain(newPatternReader(), h)
	return verify.Install{Name: "bench.img", Length: benchSize, Hashes: map[string][]byte{"sha256": h.Sum(nil)}}
})

// drain reads r to the end in 64 KiB reads, writing to h if it is non-nil.
func drain(r io.Reader, h hash.Hash) error {
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if h != nil {
			h.Write(buf[:n])
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func BenchmarkSHA256(b *testing.B) {
	b.SetBytes(benchSize)
	for b.Loop() {
		h := sha256.New()
		drain(newPatternReader(), h)
		h.Sum(nil)
	}
}

func BenchmarkPayloadReader(b *testing.B) {
	in := benchInstall()
	b.SetBytes(benchSize)
	for b.Loop() {
		r := verify.NewPayloadReader(newPatternReader(), in, verify.PayloadOptions{MinRate: 1, Window: 1 << 62})
		if err := drain(r, nil); err != nil {
			b.Fatal(err)
		}
	}
}
