package keys_test

import (
	"path/filepath"
	"testing"

	"github.com/koshin-ota/koshin/trust/keys"
)

// BenchmarkUnlockDefaultKDF measures what an operator waits for when a key
// file sealed with DefaultKDF is opened: one Argon2id derivation (64 MiB)
// and one AES-GCM open.
func BenchmarkUnlockDefaultKDF(b *testing.B) {
	path := filepath.Join(b.TempDir(), "k")
	if err := keys.WriteKeyFile(path, mustGenerate(b, keys.Ed25519), testPassphrase, keys.DefaultKDF); err != nil {
		b.Fatal(err)
	}
	kf, err := keys.OpenKeyFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kf.Decrypt(testPassphrase); err != nil {
			b.Fatal(err)
		}
	}
}
