package encryption

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/trust"
)

func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

// TestFormatMatchesSpec rebuilds a two-chunk stream from the byte layout in
// docs/encryption.md, with literals instead of package code, and requires the
// encrypter to produce exactly those bytes.
func TestFormatMatchesSpec(t *testing.T) {
	key, salt := seq(0x00, 32), seq(0x20, 32)
	plain := bytes.Repeat([]byte("koshin!"), 65541/7+1)[:65541]

	hdr := append([]byte("KOSHINEC\x00\x00\x00\x01\x00\x01\x00\x00"), salt...)
	chunkKey, err := hkdf.Key(sha256.New, key, salt, "koshin-aes256gcm-chunk64k-v1 payload key", 32)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(chunkKey)
	gcm, _ := cipher.NewGCM(block)
	nonce0 := make([]byte, 12)
	nonce1 := append(make([]byte, 10), 0x01, 0x01) // counter 1, final flag
	want := append(bytes.Clone(hdr), gcm.Seal(nil, nonce0, plain[:65536], hdr)...)
	want = append(want, gcm.Seal(nil, nonce1, plain[65536:], hdr)...)

	var got bytes.Buffer
	if _, err := v1.encrypt(&got, bytes.NewReader(plain), key, salt); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("ciphertext differs from the documented format")
	}
}

// TestVector pins the test vector published in docs/encryption.md (checked
// there against an independent implementation): content key 00..1f, salt
// 20..3f, plaintext "koshin".
func TestVector(t *testing.T) {
	var got bytes.Buffer
	if _, err := v1.encrypt(&got, strings.NewReader("koshin"), seq(0x00, 32), seq(0x20, 32)); err != nil {
		t.Fatal(err)
	}
	const want = "4b4f5348494e45430000000100010000" + // magic, version 1, chunk size 65536
		"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f" + // salt
		"bfdca93476b5" + // chunk 0 (final): "koshin" encrypted
		"6a114f988e160377ac9cd12ead06b9cb" // its tag
	if h := hex.EncodeToString(got.Bytes()); h != want {
		t.Fatalf("ciphertext\n%s\nwant\n%s", h, want)
	}
}

// tiny is format v1 scaled down so tests reach chunk boundaries and the
// counter limit with a few hundred bytes.
var tiny = format{chunkSize: 16, maxChunks: 3}

func TestCounterOverflow(t *testing.T) {
	key, salt := seq(1, 32), seq(2, 32)
	if _, err := tiny.encrypt(io.Discard, bytes.NewReader(make([]byte, 48)), key, salt); err != nil {
		t.Fatalf("3 chunks under a 3-chunk limit: %v", err)
	}
	_, err := tiny.encrypt(io.Discard, bytes.NewReader(make([]byte, 49)), key, salt)
	if !errors.Is(err, trust.ErrInvalid) || !strings.Contains(err.Error(), "overflow") {
		t.Fatalf("4 chunks under a 3-chunk limit: %v, want counter overflow", err)
	}
	if n := tiny.ciphertextLength(49); n != -1 {
		t.Fatalf("ciphertextLength beyond the limit = %d, want -1", n)
	}

	// A stream made with a higher limit must stop at the reader's limit.
	var ct bytes.Buffer
	if _, err := (format{chunkSize: 16, maxChunks: 4}).encrypt(&ct, bytes.NewReader(make([]byte, 64)), key, salt); err != nil {
		t.Fatal(err)
	}
	r, err := tiny.newReader(&ct, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if !errors.Is(err, trust.ErrDecrypt) || !strings.Contains(err.Error(), "overflow") || len(got) != 48 {
		t.Fatalf("reading 4 chunks under a 3-chunk limit: %d bytes, %v", len(got), err)
	}
}

func TestEmptyFinalChunkRefused(t *testing.T) {
	// Hand-build full chunk 0 then an empty final chunk 1, which Encrypt
	// never writes: a second encoding of the same 16 bytes.
	f := format{chunkSize: 16, maxChunks: 8}
	key, salt := seq(1, 32), seq(2, 32)
	aead, err := newAEAD(key, salt)
	if err != nil {
		t.Fatal(err)
	}
	hdr := f.header(salt)
	var nonce [nonceSize]byte
	ct := bytes.Clone(hdr)
	setNonce(&nonce, 0, false)
	ct = aead.Seal(ct, nonce[:], make([]byte, 16), hdr)
	setNonce(&nonce, 1, true)
	ct = aead.Seal(ct, nonce[:], nil, hdr)

	r, err := f.newReader(bytes.NewReader(ct), key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, trust.ErrDecrypt) || !strings.Contains(err.Error(), "empty final chunk") {
		t.Fatalf("empty final chunk after data: %v", err)
	}
}

// FuzzNewReader feeds arbitrary bytes to the reader in the production format
// and in a 64-byte-chunk format that reaches multi-chunk paths with short
// inputs. It must never panic; a failure must wrap trust.ErrDecrypt after
// releasing only whole non-final chunks; a success must be canonical, i.e.
// the input is exactly what Encrypt writes for that plaintext and salt.
func FuzzNewReader(f *testing.F) {
	key := seq(7, 32)
	small := format{chunkSize: 64, maxChunks: 1 << 32}
	for _, fm := range []format{v1, small} {
		for _, n := range []int{0, 1, 63, 64, 65, 128, 200} {
			var ct bytes.Buffer
			if _, err := fm.encrypt(&ct, bytes.NewReader(seq(byte(n), n)), key, seq(byte(n+1), 32)); err != nil {
				f.Fatal(err)
			}
			f.Add(ct.Bytes())
		}
	}
	f.Add([]byte("KOSHINEC"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fm := range []format{v1, small} {
			checkDecrypt(t, fm, key, data)
		}
	})
}

func checkDecrypt(t *testing.T, f format, key, data []byte) {
	r, err := f.newReader(bytes.NewReader(data), key)
	if err != nil {
		if !errors.Is(err, trust.ErrDecrypt) {
			t.Fatalf("NewReader: %v does not wrap ErrDecrypt", err)
		}
		return
	}
	plain, err := io.ReadAll(r)
	if err != nil {
		if !errors.Is(err, trust.ErrDecrypt) {
			t.Fatalf("Read: %v does not wrap ErrDecrypt", err)
		}
		if len(plain)%f.chunkSize != 0 {
			t.Fatalf("released %d bytes before failing: not whole non-final chunks", len(plain))
		}
		return
	}
	var again bytes.Buffer
	if _, err := f.encrypt(&again, bytes.NewReader(plain), key, data[HeaderSize-saltSize:HeaderSize]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), data) {
		t.Fatalf("accepted a non-canonical ciphertext of %d bytes", len(data))
	}
}
