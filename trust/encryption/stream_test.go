package encryption_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/encryption"
)

const sealedChunk = encryption.ChunkSize + encryption.TagSize

func mustKey(tb testing.TB) []byte {
	tb.Helper()
	k, err := encryption.NewContentKey()
	if err != nil {
		tb.Fatal(err)
	}
	if len(k) != encryption.KeySize {
		tb.Fatalf("content key is %d bytes", len(k))
	}
	return k
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func mustEncrypt(tb testing.TB, plain, key []byte) []byte {
	tb.Helper()
	var ct bytes.Buffer
	if _, err := encryption.Encrypt(&ct, bytes.NewReader(plain), key); err != nil {
		tb.Fatalf("Encrypt: %v", err)
	}
	return ct.Bytes()
}

// decrypt returns whatever plaintext the reader released and the first error
// (NewReader's or Read's).
func decrypt(ct, key []byte) ([]byte, error) {
	r, err := encryption.NewReader(bytes.NewReader(ct), key)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// chunkOffset is where sealed chunk i starts in a ciphertext.
func chunkOffset(i int) int { return encryption.HeaderSize + i*sealedChunk }

func TestRoundTrip(t *testing.T) {
	key := mustKey(t)
	for _, n := range []int{0, 1, 65535, 65536, 65537, 3 * 65536, 3*65536 + 17, 5<<20 + 3} {
		plain := randomBytes(n)
		var ct bytes.Buffer
		res, err := encryption.Encrypt(&ct, bytes.NewReader(plain), key)
		if err != nil {
			t.Fatalf("size %d: Encrypt: %v", n, err)
		}
		sum := sha256.Sum256(plain)
		ctSum := sha256.Sum256(ct.Bytes())
		want := encryption.Result{
			CiphertextLength: encryption.CiphertextLength(int64(n)),
			CiphertextSHA256: hex.EncodeToString(ctSum[:]),
			PlaintextLength:  int64(n),
			PlaintextSHA256:  hex.EncodeToString(sum[:]),
		}
		if res != want || int64(ct.Len()) != want.CiphertextLength {
			t.Fatalf("size %d: result %+v, ciphertext %d bytes; want %+v", n, res, ct.Len(), want)
		}

		// Read path.
		got, err := decrypt(ct.Bytes(), key)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d: Read path: %d bytes, err %v", n, len(got), err)
		}
		// WriteTo path (io.Copy).
		r, err := encryption.NewReader(bytes.NewReader(ct.Bytes()), key)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if m, err := io.Copy(&out, r); err != nil || m != int64(n) || !bytes.Equal(out.Bytes(), plain) {
			t.Fatalf("size %d: WriteTo path: %d bytes, err %v", n, m, err)
		}
	}
}

// TestReaderContract runs the standard reader checks with a source that
// returns one byte per Read, so chunk reassembly cannot rely on full reads.
func TestReaderContract(t *testing.T) {
	key := mustKey(t)
	plain := randomBytes(2*65536 + 9)
	ct := mustEncrypt(t, plain, key)
	r, err := encryption.NewReader(iotest.OneByteReader(bytes.NewReader(ct)), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := iotest.TestReader(r, plain); err != nil {
		t.Fatal(err)
	}
}

func TestEncryptionIsRandomised(t *testing.T) {
	key, plain := mustKey(t), []byte("same payload, same key")
	a, b := mustEncrypt(t, plain, key), mustEncrypt(t, plain, key)
	if bytes.Equal(a, b) {
		t.Fatal("two encryptions under one key are identical: salt not random, nonces would repeat")
	}
}

func TestCiphertextLength(t *testing.T) {
	const h, tag = encryption.HeaderSize, encryption.TagSize
	for _, tc := range []struct{ in, want int64 }{
		{-1, -1},
		{0, h + tag},
		{1, h + 1 + tag},
		{65535, h + 65535 + tag},
		{65536, h + 65536 + tag},
		{65537, h + 65537 + 2*tag},
		{3 * 65536, h + 3*65536 + 3*tag},
		{encryption.MaxPlaintextLength, h + encryption.MaxPlaintextLength + encryption.MaxChunks*tag},
		{encryption.MaxPlaintextLength + 1, -1},
	} {
		if got := encryption.CiphertextLength(tc.in); got != tc.want {
			t.Errorf("CiphertextLength(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestWrongKey(t *testing.T) {
	ct := mustEncrypt(t, randomBytes(100_000), mustKey(t))
	got, err := decrypt(ct, mustKey(t))
	if !errors.Is(err, trust.ErrDecrypt) || len(got) != 0 {
		t.Fatalf("wrong key: released %d bytes, err %v; want nothing and ErrDecrypt", len(got), err)
	}
}

func TestBadKeySize(t *testing.T) {
	if _, err := encryption.Encrypt(io.Discard, strings.NewReader("x"), make([]byte, 16)); !errors.Is(err, trust.ErrInvalid) {
		t.Errorf("Encrypt with 16-byte key: %v, want ErrInvalid", err)
	}
	if _, err := encryption.NewReader(strings.NewReader(""), make([]byte, 31)); !errors.Is(err, trust.ErrInvalid) {
		t.Errorf("NewReader with 31-byte key: %v, want ErrInvalid", err)
	}
}

func TestIOErrorsPassThrough(t *testing.T) {
	key, boom := mustKey(t), errors.New("boom")
	if _, err := encryption.Encrypt(io.Discard, iotest.ErrReader(boom), key); !errors.Is(err, boom) {
		t.Errorf("Encrypt, failing source: %v", err)
	}
	if _, err := encryption.Encrypt(failWriter{boom}, strings.NewReader("x"), key); !errors.Is(err, boom) {
		t.Errorf("Encrypt, failing destination: %v", err)
	}
	ct := mustEncrypt(t, randomBytes(3*65536), key)
	src := io.MultiReader(bytes.NewReader(ct[:chunkOffset(1)+5]), iotest.ErrReader(boom))
	r, err := encryption.NewReader(src, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if !errors.Is(err, boom) || errors.Is(err, trust.ErrDecrypt) {
		t.Fatalf("failing source: %v; want the source's error, not ErrDecrypt", err)
	}
	if len(got) != encryption.ChunkSize {
		t.Fatalf("released %d bytes before the source failed, want one chunk", len(got))
	}
	// Errors are sticky: the reader never resumes on a broken stream.
	if n, err2 := r.Read(make([]byte, 10)); n != 0 || !errors.Is(err2, boom) {
		t.Fatalf("Read after error: %d, %v", n, err2)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

// TestDecryptMemoryIsBounded decrypts 16 MiB and requires the allocations to
// stay near two chunks: the reader must not buffer the payload.
func TestDecryptMemoryIsBounded(t *testing.T) {
	key := mustKey(t)
	ct := mustEncrypt(t, randomBytes(16<<20), key)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r, err := encryption.NewReader(bytes.NewReader(ct), key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 4*encryption.ChunkSize {
		t.Fatalf("decrypting 16 MiB allocated %d bytes, want at most %d", n, 4*encryption.ChunkSize)
	}
}
