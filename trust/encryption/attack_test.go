package encryption_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/encryption"
)

// fourChunks is a payload of three full chunks and a short final one.
const fourChunks = 3*encryption.ChunkSize + 100

// mustReject decrypts a modified ciphertext and checks that it fails with
// trust.ErrDecrypt, that the message contains msg, and that what the reader
// released before failing is exactly the first `released` bytes of plain:
// the chunks before the damage, never unauthenticated bytes.
func mustReject(t *testing.T, name string, ct, key, plain []byte, released int, msg string) {
	t.Helper()
	got, err := decrypt(ct, key)
	if !errors.Is(err, trust.ErrDecrypt) {
		t.Errorf("%s: err %v, want ErrDecrypt", name, err)
		return
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("%s: err %q does not mention %q", name, err, msg)
	}
	if len(got) != released || !bytes.Equal(got, plain[:len(got)]) {
		t.Errorf("%s: released %d bytes (prefix of plaintext: %v), want exactly %d", name, len(got), bytes.HasPrefix(plain, got), released)
	}
}

func flipBit(ct []byte, bit int) []byte {
	c := slices.Clone(ct)
	c[bit/8] ^= 1 << (bit % 8)
	return c
}

func TestHeaderTampering(t *testing.T) {
	key, plain := mustKey(t), randomBytes(1000)
	ct := mustEncrypt(t, plain, key)
	for bit := range encryption.HeaderSize * 8 {
		// Magic, version and chunk size fail the header check; salt bits
		// change the chunk key so chunk 0 fails.
		mustReject(t, fmt.Sprintf("header bit %d", bit), flipBit(ct, bit), key, plain, 0, "")
	}
	for n := range encryption.HeaderSize {
		mustReject(t, fmt.Sprintf("header cut at %d", n), ct[:n], key, plain, 0, "bad header: truncated")
	}
	mustReject(t, "version 3", flipBit(ct, 8*11+1), key, plain, 0, "bad header: version 3")
	mustReject(t, "chunk size", flipBit(ct, 8*12), key, plain, 0, "bad header: chunk size")
}

func TestChunkTampering(t *testing.T) {
	key, plain := mustKey(t), randomBytes(fourChunks)
	ct := mustEncrypt(t, plain, key)
	for i := range 4 {
		start, end := chunkOffset(i), min(chunkOffset(i+1), len(ct))
		for name, at := range map[string]int{
			"first body byte": start,
			"mid body byte":   (start + end - encryption.TagSize) / 2,
			"last body byte":  end - encryption.TagSize - 1,
			"first tag byte":  end - encryption.TagSize,
			"last tag byte":   end - 1,
		} {
			mustReject(t, fmt.Sprintf("chunk %d %s", i, name), flipBit(ct, 8*at+3), key, plain,
				i*encryption.ChunkSize, fmt.Sprintf("chunk %d failed authentication", i))
		}
	}
}

func TestTruncation(t *testing.T) {
	key, plain := mustKey(t), randomBytes(fourChunks)
	ct := mustEncrypt(t, plain, key)
	mustReject(t, "header only", ct[:chunkOffset(0)], key, plain, 0, "truncated")
	for k := 1; k < 4; k++ {
		// Cut exactly after chunk k-1: every remaining chunk is intact,
		// only the final-chunk flag gives the truncation away.
		mustReject(t, fmt.Sprintf("cut after chunk %d", k-1), ct[:chunkOffset(k)], key, plain,
			(k-1)*encryption.ChunkSize, fmt.Sprintf("truncated: stream ends after non-final chunk %d", k-1))
	}
	for k := range 4 {
		for _, extra := range []int{1, encryption.TagSize - 1, encryption.TagSize, 99} {
			n := chunkOffset(k) + extra
			mustReject(t, fmt.Sprintf("cut %d bytes into chunk %d", extra, k), ct[:n], key, plain, k*encryption.ChunkSize, "")
		}
	}
	mustReject(t, "last byte missing", ct[:len(ct)-1], key, plain, 3*encryption.ChunkSize, "chunk 3 failed authentication")
}

// chunksOf splits a ciphertext into header and sealed chunks.
func chunksOf(ct []byte) (hdr []byte, chunks [][]byte) {
	hdr, rest := ct[:encryption.HeaderSize], ct[encryption.HeaderSize:]
	for len(rest) > 0 {
		n := min(sealedChunk, len(rest))
		chunks, rest = append(chunks, rest[:n]), rest[n:]
	}
	return hdr, chunks
}

func join(hdr []byte, chunks ...[]byte) []byte {
	return slices.Concat(append([][]byte{hdr}, chunks...)...)
}

func TestReorderDuplicateDrop(t *testing.T) {
	key, plain := mustKey(t), randomBytes(fourChunks)
	hdr, c := chunksOf(mustEncrypt(t, plain, key))
	const cs = encryption.ChunkSize
	for _, tc := range []struct {
		name     string
		ct       []byte
		released int
		msg      string
	}{
		{"swap 0 and 1", join(hdr, c[1], c[0], c[2], c[3]), 0, "chunk 0 failed"},
		{"swap 1 and 2", join(hdr, c[0], c[2], c[1], c[3]), cs, "chunk 1 failed"},
		{"final chunk moved first", join(hdr, c[3], c[0], c[1], c[2]), 0, "chunk 0 failed"},
		{"duplicate chunk 1", join(hdr, c[0], c[1], c[1], c[2], c[3]), 2 * cs, "chunk 2 failed"},
		{"duplicate final chunk", join(hdr, c[0], c[1], c[2], c[3], c[3]), 3 * cs, "chunk 3 failed"},
		{"drop chunk 1", join(hdr, c[0], c[2], c[3]), cs, "chunk 1 failed"},
		{"drop final chunk", join(hdr, c[0], c[1], c[2]), 2 * cs, "truncated: stream ends after non-final chunk 2"},
	} {
		mustReject(t, tc.name, tc.ct, key, plain, tc.released, tc.msg)
	}
}

func TestExtension(t *testing.T) {
	key := mustKey(t)
	short := randomBytes(fourChunks)
	ct := mustEncrypt(t, short, key)
	for _, tail := range [][]byte{{0}, make([]byte, encryption.TagSize), ct[chunkOffset(1):chunkOffset(2)]} {
		mustReject(t, fmt.Sprintf("short final chunk + %d bytes", len(tail)), slices.Concat(ct, tail), key, short, 3*encryption.ChunkSize, "")
	}
	// A full-size final chunk followed by anything is named as extension.
	full := randomBytes(2 * encryption.ChunkSize)
	ct = mustEncrypt(t, full, key)
	_, c := chunksOf(ct)
	for _, tail := range [][]byte{{0}, c[1], c[0]} {
		mustReject(t, fmt.Sprintf("full final chunk + %d bytes", len(tail)), slices.Concat(ct, tail), key, full,
			encryption.ChunkSize, "trailing data after final chunk 1")
	}

	empty := mustEncrypt(t, nil, key)
	mustReject(t, "empty payload + 1 byte", slices.Concat(empty, []byte{1}), key, nil, 0, "chunk 0 failed")
	mustReject(t, "empty payload, tag cut", empty[:len(empty)-1], key, nil, 0, "truncated")
}

// TestSpliceAcrossEncryptions takes a chunk from a second encryption of the
// same payload under the same key. The salt gives each encryption its own
// chunk key and the header is in every chunk's AAD, so the chunk is foreign.
func TestSpliceAcrossEncryptions(t *testing.T) {
	key, plain := mustKey(t), randomBytes(fourChunks)
	hdrA, a := chunksOf(mustEncrypt(t, plain, key))
	_, b := chunksOf(mustEncrypt(t, plain, key))
	mustReject(t, "chunk 2 from another encryption", join(hdrA, a[0], a[1], b[2], a[3]), key, plain,
		2*encryption.ChunkSize, "chunk 2 failed")
}
