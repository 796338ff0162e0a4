package encryption

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/koshin-ota/koshin/trust"
)

// Format constants of scheme trust.EncryptionScheme. Changing any of them
// makes a new scheme with a new name and header version.
const (
	// KeySize is the length of a content key (AES-256).
	KeySize = 32
	// ChunkSize is the plaintext length of every chunk but the last. 64 KiB
	// keeps the tag overhead at 0.02% while bounding the plaintext a device
	// must buffer before it may release it.
	ChunkSize = 64 << 10
	// TagSize is the GCM tag appended to every chunk.
	TagSize = 16
	// HeaderSize is the length of the stream header.
	HeaderSize = 48
	// MaxChunks bounds the chunk counter; a stream needing more chunks is
	// refused on both sides, so the counter can never wrap and repeat a nonce.
	MaxChunks = 1 << 32
	// MaxPlaintextLength is the longest payload that fits in MaxChunks chunks
	// (256 TiB).
	MaxPlaintextLength int64 = ChunkSize * MaxChunks

	magic        = "KOSHINEC"
	version      = 1
	saltSize     = 32
	nonceSize    = 12
	lastChunkTag = 0x01
	// payloadKeyInfo separates the HKDF output from any other use of the
	// content key.
	payloadKeyInfo = trust.EncryptionScheme + " payload key"
)

// format carries the parameters the stream code reads. Production code uses
// v1 only; tests build formats with small chunks and a small counter limit so
// that fuzzing and overflow tests reach chunk boundaries with tiny inputs.
type format struct {
	chunkSize int
	maxChunks uint64
}

var v1 = format{chunkSize: ChunkSize, maxChunks: MaxChunks}

// CiphertextLength returns the exact ciphertext length for a plaintext of
// plaintextLen bytes, so a signer can predict sizes without encrypting. It
// returns -1 when plaintextLen is negative or above MaxPlaintextLength.
func CiphertextLength(plaintextLen int64) int64 {
	return v1.ciphertextLength(plaintextLen)
}

func (f format) ciphertextLength(n int64) int64 {
	if n < 0 || n > int64(f.chunkSize)*int64(f.maxChunks) {
		return -1
	}
	return HeaderSize + n + f.chunks(n)*TagSize
}

// chunks counts the chunks of an n-byte plaintext: every chunk but the last is
// full, and the last is never empty unless it is the only one.
func (f format) chunks(n int64) int64 {
	if n == 0 {
		return 1
	}
	return (n + int64(f.chunkSize) - 1) / int64(f.chunkSize)
}

// header returns the stream header: magic, version, chunk size and salt. The
// whole header is the AAD of every chunk.
func (f format) header(salt []byte) []byte {
	h := make([]byte, 0, HeaderSize)
	h = append(h, magic...)
	h = binary.BigEndian.AppendUint32(h, version)
	h = binary.BigEndian.AppendUint32(h, uint32(f.chunkSize))
	return append(h, salt...)
}

// checkHeader validates everything in h except the salt, which any value may
// take.
func (f format) checkHeader(h []byte) error {
	if !bytes.Equal(h[:len(magic)], []byte(magic)) {
		return fmt.Errorf("%w: bad header: not a koshin encrypted payload", trust.ErrDecrypt)
	}
	if v := binary.BigEndian.Uint32(h[8:12]); v != version {
		return fmt.Errorf("%w: bad header: version %d, want %d", trust.ErrDecrypt, v, version)
	}
	if cs := binary.BigEndian.Uint32(h[12:16]); cs != uint32(f.chunkSize) {
		return fmt.Errorf("%w: bad header: chunk size %d, want %d", trust.ErrDecrypt, cs, f.chunkSize)
	}
	return nil
}

// newAEAD derives the chunk key from the content key and the header's salt.
// The random salt makes the chunk key unique per encryption, so encrypting
// twice under one content key (a signer retry, say) cannot repeat a
// (key, nonce) pair, which would break GCM's confidentiality and integrity.
func newAEAD(contentKey, salt []byte) (cipher.AEAD, error) {
	if len(contentKey) != KeySize {
		return nil, fmt.Errorf("%w: content key is %d bytes, want %d", trust.ErrInvalid, len(contentKey), KeySize)
	}
	k, err := hkdf.Key(sha256.New, contentKey, salt, payloadKeyInfo, KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive chunk key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("chunk cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// setNonce writes the nonce of chunk i: an 11-byte big-endian counter followed
// by a flag byte that is 1 only for the final chunk. Bytes 0-2 stay zero
// because the counter is below MaxChunks.
func setNonce(nonce *[nonceSize]byte, i uint64, last bool) {
	binary.BigEndian.PutUint64(nonce[3:11], i)
	nonce[11] = 0
	if last {
		nonce[11] = lastChunkTag
	}
}
