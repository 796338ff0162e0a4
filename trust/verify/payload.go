package verify

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/koshin-ota/koshin/trust"
)

// PayloadOptions configure the slow-retrieval watchdog of a PayloadReader.
type PayloadOptions struct {
	// MinRate is the minimum throughput in bytes per second over each
	// Window; 0 disables the check.
	MinRate int64
	Window  time.Duration
	// Now is the watchdog's clock; nil means time.Now.
	Now func() time.Time
}

// PayloadReader verifies a payload while it streams: it hashes every byte
// it passes on with each signed algorithm (sha256, sha512), refuses to pass
// on more than the signed length (trust.ErrTooLong, endless-data attack),
// fails with trust.ErrTooSlow when throughput drops below the floor, and at
// EOF returns io.EOF only if length and every hash match (else
// trust.ErrMismatch). A caller writing to the inactive slot must treat the
// data as unverified until Read has returned io.EOF.
type PayloadReader struct {
	r      io.Reader
	length int64
	n      int64 // bytes passed on so far
	algs   []string
	want   [][]byte
	hashes []hash.Hash
	meter  rateMeter
	bind   [32]byte // identifies the target in checkpoints
	err    error    // sticky: verification failures and EOF
}

// hashAlgs are the digests a PayloadReader can check, in checkpoint order.
var hashAlgs = map[string]func() hash.Hash{"sha256": sha256.New, "sha512": sha512.New}

// NewPayloadReader verifies r against in's signed length and hashes. An
// Install without a supported hash, with an unsupported one, or with a
// negative length yields a reader whose first Read fails with
// trust.ErrInvalid.
func NewPayloadReader(r io.Reader, in Install, opts PayloadOptions) *PayloadReader {
	p := &PayloadReader{r: r, length: in.Length, meter: newRateMeter(opts.MinRate, opts.Window, opts.Now)}
	p.err = p.setHashes(in)
	return p
}

func (p *PayloadReader) setHashes(in Install) error {
	if in.Length < 0 {
		return fmt.Errorf("%w: payload %q: length %d", trust.ErrInvalid, in.Name, in.Length)
	}
	if len(in.Hashes) == 0 {
		return fmt.Errorf("%w: payload %q has no signed hash", trust.ErrInvalid, in.Name)
	}
	for _, alg := range slices.Sorted(maps.Keys(in.Hashes)) {
		newHash, ok := hashAlgs[alg]
		if !ok {
			return fmt.Errorf("%w: payload %q: unsupported hash %q", trust.ErrInvalid, in.Name, alg)
		}
		h := newHash()
		if len(in.Hashes[alg]) != h.Size() {
			return fmt.Errorf("%w: payload %q: %s is %d bytes", trust.ErrInvalid, in.Name, alg, len(in.Hashes[alg]))
		}
		p.algs = append(p.algs, alg)
		p.want = append(p.want, slices.Clone(in.Hashes[alg]))
		p.hashes = append(p.hashes, h)
	}
	p.bind = bindInstall(in.Length, p.algs, p.want)
	return nil
}

// Read implements io.Reader.
func (p *PayloadReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if len(b) == 0 {
		return 0, nil
	}
	// Ask for at most one byte beyond the signed length: enough to detect
	// excess data without accepting it.
	if rem := p.length - p.n; int64(len(b)) > rem+1 {
		b = b[:rem+1]
	}
	p.meter.begin()
	n, err := p.r.Read(b)
	if rem := p.length - p.n; int64(n) > rem {
		p.consume(b[:rem])
		p.err = fmt.Errorf("%w: payload exceeds its signed length %d", trust.ErrTooLong, p.length)
		return int(rem), p.err
	}
	p.consume(b[:n])
	if merr := p.meter.add(n); merr != nil {
		p.err = merr
		return n, merr
	}
	if err == io.EOF {
		p.err = p.finish()
		return n, p.err
	}
	return n, err
}

func (p *PayloadReader) consume(b []byte) {
	for _, h := range p.hashes {
		h.Write(b) // hash.Hash.Write never fails
	}
	p.n += int64(len(b))
}

// finish is the verdict at EOF.
func (p *PayloadReader) finish() error {
	if p.n != p.length {
		return fmt.Errorf("%w: payload ended after %d of %d bytes", trust.ErrMismatch, p.n, p.length)
	}
	for i, h := range p.hashes {
		if subtle.ConstantTimeCompare(h.Sum(nil), p.want[i]) != 1 {
			return fmt.Errorf("%w: payload %s differs from the signed hash", trust.ErrMismatch, p.algs[i])
		}
	}
	return io.EOF
}

// Offset returns how many verified-so-far bytes have been passed on.
func (p *PayloadReader) Offset() int64 { return p.n }
