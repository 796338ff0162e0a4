package encryption

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	"github.com/koshin-ota/koshin/trust"
)

// NewContentKey returns a fresh random content key for one release. A key is
// never shared between releases, so disclosing one (say, from a compromised
// device) exposes one payload only (EN 303 645 5.4-4).
func NewContentKey() ([]byte, error) {
	k := make([]byte, KeySize)
	rand.Read(k) // never fails; crashes the program instead
	return k, nil
}

// Result describes an encrypted payload: the ciphertext values go into the
// signed target (length, hashes), the plaintext values into
// trust.TargetCustom.PlaintextLength and PlaintextSHA256.
type Result struct {
	CiphertextLength int64
	CiphertextSHA256 string // hex
	PlaintextLength  int64
	PlaintextSHA256  string // hex
}

// Encrypt reads the whole plaintext from src and writes the encrypted stream
// to dst under contentKey. It holds one chunk in memory whatever the payload
// size. Plaintexts longer than MaxPlaintextLength are refused.
func Encrypt(dst io.Writer, src io.Reader, contentKey []byte) (Result, error) {
	salt := make([]byte, saltSize)
	rand.Read(salt)
	return v1.encrypt(dst, src, contentKey, salt)
}

func (f format) encrypt(dst io.Writer, src io.Reader, contentKey, salt []byte) (Result, error) {
	aead, err := newAEAD(contentKey, salt)
	if err != nil {
		return Result{}, err
	}
	hdr := f.header(salt)
	out := &hashWriter{w: dst, h: sha256.New()}
	if _, err := out.Write(hdr); err != nil {
		return Result{}, fmt.Errorf("write header: %w", err)
	}
	ptHash := sha256.New()
	// One byte more than a chunk: seeing it tells a full chunk that has a
	// successor from a full final chunk without a second read.
	in := make([]byte, f.chunkSize+1)
	sealed := make([]byte, 0, f.chunkSize+TagSize)
	var nonce [nonceSize]byte
	var ptLen int64
	have := 0
	for i := uint64(0); ; i++ {
		n, err := io.ReadFull(src, in[have:])
		n += have
		last := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !last {
			return Result{}, fmt.Errorf("read plaintext: %w", err)
		}
		if i >= f.maxChunks {
			return Result{}, fmt.Errorf("%w: plaintext needs more than %d chunks (chunk counter overflow)", trust.ErrInvalid, f.maxChunks)
		}
		chunk := in[:min(n, f.chunkSize)]
		setNonce(&nonce, i, last)
		sealed = aead.Seal(sealed[:0], nonce[:], chunk, hdr)
		if _, err := out.Write(sealed); err != nil {
			return Result{}, fmt.Errorf("write chunk %d: %w", i, err)
		}
		ptHash.Write(chunk)
		ptLen += int64(len(chunk))
		if last {
			break
		}
		in[0], have = in[f.chunkSize], 1
	}
	if want := f.ciphertextLength(ptLen); out.n != want {
		return Result{}, fmt.Errorf("encrypt: wrote %d bytes, format predicts %d", out.n, want)
	}
	return Result{
		CiphertextLength: out.n,
		CiphertextSHA256: hex.EncodeToString(out.h.Sum(nil)),
		PlaintextLength:  ptLen,
		PlaintextSHA256:  hex.EncodeToString(ptHash.Sum(nil)),
	}, nil
}

// hashWriter counts and hashes what reaches w.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}
