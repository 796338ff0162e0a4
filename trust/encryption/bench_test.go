package encryption_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"testing"

	"github.com/koshin-ota/koshin/trust/encryption"
)

const benchSize = 64 << 20

// BenchmarkSHA256 is the baseline: the device hashes every payload anyway, so
// decryption costs little if it runs at least as fast as hashing.
func BenchmarkSHA256(b *testing.B) {
	plain := randomBytes(benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		sha256.Sum256(plain)
	}
}

func BenchmarkEncrypt(b *testing.B) {
	key, plain := mustKey(b), randomBytes(benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		if _, err := encryption.Encrypt(io.Discard, bytes.NewReader(plain), key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecrypt measures io.Copy, which uses the reader's WriteTo.
func BenchmarkDecrypt(b *testing.B) {
	key := mustKey(b)
	ct := mustEncrypt(b, randomBytes(benchSize), key)
	b.SetBytes(benchSize)
	for b.Loop() {
		r, err := encryption.NewReader(bytes.NewReader(ct), key)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, r); err != nil || n != benchSize {
			b.Fatalf("decrypted %d bytes: %v", n, err)
		}
	}
}

// BenchmarkDecryptRead measures the Read path with a 32 KiB buffer, as a
// consumer that wraps the reader (a hashing or limiting reader) sees it.
func BenchmarkDecryptRead(b *testing.B) {
	key := mustKey(b)
	ct := mustEncrypt(b, randomBytes(benchSize), key)
	buf := make([]byte, 32<<10)
	b.SetBytes(benchSize)
	for b.Loop() {
		r, err := encryption.NewReader(bytes.NewReader(ct), key)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf); err != nil || n != benchSize {
			b.Fatalf("decrypted %d bytes: %v", n, err)
		}
	}
}
