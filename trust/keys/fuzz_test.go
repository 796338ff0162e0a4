package keys_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/koshin-ota/koshin/trust/keys"
)

// FuzzParseKeyFile: hostile key files never panic, and whatever parses
// re-encodes to a file that parses to the same header (no silent loss).
func FuzzParseKeyFile(f *testing.F) {
	for _, name := range []string{"ed25519.key", "ecdsa-p256.key"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(bytes.ReplaceAll(data, []byte(`"memory_kib": 8192`), []byte(`"memory_kib": 4294967295`)))
	}
	f.Add([]byte(`{"format":"koshin-key-v1"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := keys.ParseKeyFile(data)
		if err != nil {
			return
		}
		if kf.KDF().Validate() != nil {
			t.Fatalf("parsed a file with KDF %+v outside the bounds", kf.KDF())
		}
		enc, err := kf.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		again, err := keys.ParseKeyFile(enc)
		if err != nil {
			t.Fatalf("re-parse of re-encoded file: %v\n%s", err, enc)
		}
		if again.KeyID() != kf.KeyID() || again.Algorithm() != kf.Algorithm() || again.KDF() != kf.KDF() {
			t.Fatal("re-encoding changed the header")
		}
		enc2, _ := again.MarshalJSON()
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable:\n%s\n%s", enc, enc2)
		}
	})
}

// FuzzParsePKCS11URI: hostile URIs never panic, accepted configs validate,
// and URI() round-trips to the same configuration.
func FuzzParsePKCS11URI(f *testing.F) {
	for _, s := range []string{
		"pkcs11:token=koshin-root;object=root-1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:KOSHIN_PKCS11_PIN",
		"pkcs11:object=a%20b;token=t;id=%01%02;type=private?pin-value=1234&module-path=%2Fm.so",
		"pkcs11:token=t;object=o?module-path=/m.so&pin-source=file:/run/pin",
		"pkcs11:token=t;token=u",
		"pkcs11:?",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		cfg, err := keys.ParsePKCS11URI(uri)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("parsed config does not validate: %v", err)
		}
		again, err := keys.ParsePKCS11URI(cfg.URI())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", cfg.URI(), err)
		}
		if diff := cmp.Diff(cfg, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// FuzzParsePublicKeyPEM: hostile public key files never panic, and an
// accepted key re-encodes to the same key.
func FuzzParsePublicKeyPEM(f *testing.F) {
	for _, name := range []string{"ed25519.pub.pem", "ecdsa-p256.pub.pem"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pub, err := keys.ParsePublicKeyPEM(data)
		if err != nil {
			return
		}
		enc, err := keys.MarshalPublicKeyPEM(pub)
		if err != nil {
			t.Fatal(err)
		}
		again, err := keys.ParsePublicKeyPEM(enc)
		if err != nil {
			t.Fatal(err)
		}
		id1, _ := keys.KeyID(pub)
		id2, _ := keys.KeyID(again)
		if id1 != id2 {
			t.Fatal("re-encoding changed the key")
		}
	})
}
