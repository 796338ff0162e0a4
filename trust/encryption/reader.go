package encryption

import (
	"crypto/cipher"
	"fmt"
	"io"

	"github.com/koshin-ota/koshin/trust"
)

// NewReader reads and checks the stream header from src and returns a reader
// of the decrypted payload. The reader releases a chunk's plaintext only after
// that chunk's tag has verified, and returns io.EOF only after the final chunk
// verified and src ended right behind it; so a consumer must treat what it
// has read as incomplete until io.EOF, and discard it on any error (CCDS
// UPE11). Errors from authentication wrap trust.ErrDecrypt; errors from src
// are returned wrapped as they are. Memory use is about two chunks.
//
// The returned reader implements io.WriterTo, so io.Copy hands plaintext to
// the destination without an extra copy.
func NewReader(src io.Reader, contentKey []byte) (io.Reader, error) {
	return v1.newReader(src, contentKey)
}

func (f format) newReader(src io.Reader, contentKey []byte) (*reader, error) {
	if len(contentKey) != KeySize {
		return nil, fmt.Errorf("%w: content key is %d bytes, want %d", trust.ErrInvalid, len(contentKey), KeySize)
	}
	hdr := make([]byte, HeaderSize)
	if _, err := io.ReadFull(src, hdr); err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil, fmt.Errorf("%w: bad header: truncated", trust.ErrDecrypt)
	} else if err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if err := f.checkHeader(hdr); err != nil {
		return nil, err
	}
	aead, err := newAEAD(contentKey, hdr[len(hdr)-saltSize:])
	if err != nil {
		return nil, err
	}
	return &reader{
		f:     f,
		src:   src,
		aead:  aead,
		hdr:   hdr,
		buf:   make([]byte, f.chunkSize+TagSize+1),
		plain: make([]byte, 0, f.chunkSize),
	}, nil
}

type reader struct {
	f     format
	src   io.Reader
	aead  cipher.AEAD
	hdr   []byte // AAD of every chunk
	buf   []byte // one sealed chunk plus the first byte of the next
	have  int    // bytes of the next chunk already in buf (0 or 1)
	plain []byte // decryption target, reused
	out   []byte // verified plaintext not yet handed out
	i     uint64 // index of the next chunk
	nonce [nonceSize]byte
	done  bool  // final chunk verified
	err   error // sticky; io.EOF after the final chunk
}

func (r *reader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.err = r.next()
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

func (r *reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(r.out) > 0 {
			n, err := w.Write(r.out)
			total += int64(n)
			r.out = r.out[n:]
			if err != nil {
				return total, err
			}
			continue
		}
		if r.err == io.EOF {
			return total, nil
		}
		if r.err != nil {
			return total, r.err
		}
		r.err = r.next()
	}
}

// next reads, verifies and decrypts one chunk into r.out.
func (r *reader) next() error {
	if r.done {
		return io.EOF
	}
	n, err := io.ReadFull(r.src, r.buf[r.have:])
	n += r.have
	// A short read ends the stream, so this chunk must be the final one;
	// a full read means at least one byte follows, so it must not be.
	last := err == io.EOF || err == io.ErrUnexpectedEOF
	if err != nil && !last {
		return fmt.Errorf("read chunk %d: %w", r.i, err)
	}
	if r.i >= r.f.maxChunks {
		return fmt.Errorf("%w: more than %d chunks (chunk counter overflow)", trust.ErrDecrypt, r.f.maxChunks)
	}
	full := r.f.chunkSize + TagSize
	sealed := r.buf[:min(n, full)]
	if len(sealed) < TagSize {
		return fmt.Errorf("%w: truncated: chunk %d is %d bytes, shorter than its tag", trust.ErrDecrypt, r.i, len(sealed))
	}
	pt, err := r.open(sealed, last)
	if err != nil {
		return err
	}
	if last && len(pt) == 0 && r.i > 0 {
		// Encrypt never writes this; accepting it would give one plaintext
		// two encodings.
		return fmt.Errorf("%w: empty final chunk %d after data", trust.ErrDecrypt, r.i)
	}
	r.out = pt
	if last {
		r.done = true
		return nil
	}
	r.buf[0], r.have = r.buf[full], 1
	r.i++
	return nil
}

// open authenticates and decrypts one chunk. On failure it retries with the
// opposite final-chunk flag, only to name the attack: a non-final chunk at the
// end of the stream means truncation at a chunk boundary, a final chunk with
// bytes after it means extension. Neither case releases plaintext.
func (r *reader) open(sealed []byte, last bool) ([]byte, error) {
	setNonce(&r.nonce, r.i, last)
	pt, err := r.aead.Open(r.plain[:0], r.nonce[:], sealed, r.hdr)
	if err == nil {
		return pt, nil
	}
	setNonce(&r.nonce, r.i, !last)
	if _, err := r.aead.Open(r.plain[:0], r.nonce[:], sealed, r.hdr); err == nil {
		if last {
			return nil, fmt.Errorf("%w: truncated: stream ends after non-final chunk %d", trust.ErrDecrypt, r.i)
		}
		return nil, fmt.Errorf("%w: trailing data after final chunk %d", trust.ErrDecrypt, r.i)
	}
	return nil, fmt.Errorf("%w: chunk %d failed authentication (tampered, reordered, truncated, or wrong key)", trust.ErrDecrypt, r.i)
}
