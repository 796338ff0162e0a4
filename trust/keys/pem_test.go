package keys_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/trust/keys"
)

func TestPublicKeyPEMRoundTrip(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(string(alg), func(t *testing.T) {
			s := mustGenerate(t, alg)
			path := filepath.Join(t.TempDir(), "pub.pem")
			if err := keys.WritePublicKeyPEM(path, s.Public()); err != nil {
				t.Fatal(err)
			}
			got, err := keys.ReadPublicKeyPEM(path)
			if err != nil {
				t.Fatal(err)
			}
			wantID, _ := keys.KeyID(s.Public())
			if gotID, _ := keys.KeyID(got); gotID != wantID {
				t.Fatalf("key ID = %s, want %s", gotID, wantID)
			}
			if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
				t.Errorf("mode = %v, want 0644", st.Mode().Perm())
			}
		})
	}
}

func TestParsePublicKeyPEMRejects(t *testing.T) {
	good, _ := keys.MarshalPublicKeyPEM(mustGenerate(t, keys.Ed25519).Public())
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	block := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	tests := map[string]string{
		"empty":            "",
		"no block":         "ed25519 AAAA",
		"private key type": block("PRIVATE KEY", []byte{1, 2, 3}),
		"rsa":              block("PUBLIC KEY", rsaDER),
		"p-384":            block("PUBLIC KEY", p384DER),
		"garbage der":      block("PUBLIC KEY", []byte("not der")),
		"two blocks":       string(good) + string(good),
		"oversized":        strings.Repeat("#", 17<<10) + string(good),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := keys.ParsePublicKeyPEM([]byte(in)); err == nil {
				t.Fatal("ParsePublicKeyPEM accepted it")
			}
		})
	}
	if _, err := keys.ParsePublicKeyPEM(append([]byte("# targets-1, held by A\n"), good...)); err != nil {
		t.Fatalf("comment before the block rejected: %v", err)
	}
}
