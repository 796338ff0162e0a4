package keys_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"github.com/koshin-ota/koshin/trust/keys"
)

func TestGenerate(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(string(alg), func(t *testing.T) {
			a, b := mustGenerate(t, alg), mustGenerate(t, alg)
			got, err := keys.AlgorithmOf(a.Public())
			if err != nil || got != alg {
				t.Fatalf("AlgorithmOf = %q, %v; want %q", got, err, alg)
			}
			idA, _ := keys.KeyID(a.Public())
			idB, _ := keys.KeyID(b.Public())
			if idA == idB {
				t.Fatal("two generated keys share a key ID")
			}
		})
	}
	for _, bad := range []keys.Algorithm{"", "rsa", "ED25519", "ecdsa"} {
		if _, err := keys.Generate(bad); err == nil {
			t.Errorf("Generate(%q) succeeded", bad)
		}
	}
}

func TestAlgorithmOfRejects(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for name, pub := range map[string]any{"rsa": &rsaKey.PublicKey, "p-384": &p384.PublicKey, "nil": nil, "short ed25519": ed25519.PublicKey{1}} {
		if _, err := keys.AlgorithmOf(pub); err == nil {
			t.Errorf("AlgorithmOf(%s) succeeded", name)
		}
	}
}
