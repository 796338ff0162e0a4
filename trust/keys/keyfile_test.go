package keys_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/koshin-ota/koshin/trust/keys"
)

var algorithms = []keys.Algorithm{keys.Ed25519, keys.ECDSAP256}

func mustWriteKey(tb testing.TB, s crypto.Signer) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "signing.key")
	if err := keys.WriteKeyFile(path, s, testPassphrase, fastKDF); err != nil {
		tb.Fatalf("WriteKeyFile: %v", err)
	}
	return path
}

// TestKeyFileRoundTrip: a key survives write and read, and the read key
// signs TUF metadata that verifies under a root listing the written key's
// public half (CCDS UPC07).
func TestKeyFileRoundTrip(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(string(alg), func(t *testing.T) {
			orig := mustGenerate(t, alg)
			path := mustWriteKey(t, orig)

			got, err := keys.ReadKeyFile(path, testPassphrase)
			if err != nil {
				t.Fatalf("ReadKeyFile: %v", err)
			}
			if !orig.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(got.Public()) {
				t.Fatal("read key's public half differs from the written key's")
			}
			root := mustRoot(t, 1, mustTUFKey(t, orig.Public()))
			if err := root.VerifyDelegate("targets", mustSignTargets(t, got)); err != nil {
				t.Fatalf("VerifyDelegate with the read key: %v", err)
			}
			other := mustGenerate(t, alg)
			if err := root.VerifyDelegate("targets", mustSignTargets(t, other)); err == nil {
				t.Fatal("VerifyDelegate accepted a signature by a key the root does not list")
			}
		})
	}
}

func TestReadPublicKeyNeedsNoPassphrase(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(string(alg), func(t *testing.T) {
			s := mustGenerate(t, alg)
			path := mustWriteKey(t, s)
			pub, err := keys.ReadPublicKey(path)
			if err != nil {
				t.Fatalf("ReadPublicKey: %v", err)
			}
			wantID, _ := keys.KeyID(s.Public())
			gotID, _ := keys.KeyID(pub)
			if gotID != wantID {
				t.Fatalf("key ID = %s, want %s", gotID, wantID)
			}
			kf, err := keys.OpenKeyFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if kf.KeyID() != wantID || kf.Algorithm() != alg || kf.KDF() != fastKDF {
				t.Fatalf("header = (%s, %s, %+v), want (%s, %s, %+v)", kf.KeyID(), kf.Algorithm(), kf.KDF(), wantID, alg, fastKDF)
			}
		})
	}
}

func TestWrongPassphrase(t *testing.T) {
	path := mustWriteKey(t, mustGenerate(t, keys.Ed25519))
	for _, pass := range [][]byte{nil, []byte("x"), []byte("correct horse battery stapl"), []byte("correct horse battery staple ")} {
		if _, err := keys.ReadKeyFile(path, pass); !errors.Is(err, keys.ErrBadPassphrase) {
			t.Errorf("ReadKeyFile(%q) error = %v, want ErrBadPassphrase", pass, err)
		}
	}
}

// TestTamperedKeyFile: every header field is bound, either by validation
// (ErrInvalidKeyFile) or by the GCM additional data (ErrBadPassphrase).
func TestTamperedKeyFile(t *testing.T) {
	s := mustGenerate(t, keys.ECDSAP256)
	data, err := os.ReadFile(mustWriteKey(t, s))
	if err != nil {
		t.Fatal(err)
	}
	other := mustGenerate(t, keys.ECDSAP256)
	otherDER, _ := x509.MarshalPKIXPublicKey(other.Public())
	otherID, _ := keys.KeyID(other.Public())

	tests := []struct {
		name   string
		mutate func(m map[string]any)
		want   error
	}{
		// Swapping in another key with a consistent key_id passes
		// validation; only the additional data catches it.
		{"public and key_id swapped", func(m map[string]any) {
			m["public"] = base64.StdEncoding.EncodeToString(otherDER)
			m["key_id"] = otherID
		}, keys.ErrBadPassphrase},
		{"public only", func(m map[string]any) { m["public"] = base64.StdEncoding.EncodeToString(otherDER) }, keys.ErrInvalidKeyFile},
		{"key_id", func(m map[string]any) { m["key_id"] = otherID }, keys.ErrInvalidKeyFile},
		{"algorithm", func(m map[string]any) { m["algorithm"] = "ed25519" }, keys.ErrInvalidKeyFile},
		{"format", func(m map[string]any) { m["format"] = "koshin-key-v2" }, keys.ErrInvalidKeyFile},
		{"cipher", func(m map[string]any) { m["cipher"] = "chacha20-poly1305" }, keys.ErrInvalidKeyFile},
		{"kdf time", func(m map[string]any) { kdf(m)["time"] = 2 }, keys.ErrBadPassphrase},
		{"kdf threads", func(m map[string]any) { kdf(m)["threads"] = 2 }, keys.ErrBadPassphrase},
		{"kdf salt", func(m map[string]any) { kdf(m)["salt"] = flipB64(t, kdf(m)["salt"]) }, keys.ErrBadPassphrase},
		{"nonce", func(m map[string]any) { m["nonce"] = flipB64(t, m["nonce"]) }, keys.ErrBadPassphrase},
		{"ciphertext", func(m map[string]any) { m["ciphertext"] = flipB64(t, m["ciphertext"]) }, keys.ErrBadPassphrase},
		{"unknown field", func(m map[string]any) { m["comment"] = "x" }, keys.ErrInvalidKeyFile},
		{"missing ciphertext", func(m map[string]any) { delete(m, "ciphertext") }, keys.ErrInvalidKeyFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(path, mutateJSON(t, data, tt.mutate), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := keys.ReadKeyFile(path, testPassphrase); !errors.Is(err, tt.want) {
				t.Fatalf("ReadKeyFile error = %v, want %v", err, tt.want)
			}
		})
	}
}

func kdf(m map[string]any) map[string]any { return m["kdf"].(map[string]any) }

func flipB64(tb testing.TB, v any) string {
	tb.Helper()
	b, err := base64.StdEncoding.DecodeString(v.(string))
	if err != nil {
		tb.Fatal(err)
	}
	b[len(b)-1] ^= 1
	return base64.StdEncoding.EncodeToString(b)
}

// TestHostileKDFParams: a key file cannot make its reader allocate or spin
// without bound before the passphrase is even checked. ParseKeyFile rejects
// these without running Argon2id.
func TestHostileKDFParams(t *testing.T) {
	data, err := os.ReadFile(mustWriteKey(t, mustGenerate(t, keys.Ed25519)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		field string
		value any
	}{
		{"memory above 1 GiB", "memory_kib", 1<<20 + 1},
		{"memory 4 TiB", "memory_kib", uint32(1<<32 - 1)},
		{"memory below floor", "memory_kib", 1024},
		{"memory negative", "memory_kib", -1},
		{"memory overflows uint32", "memory_kib", 1 << 33},
		{"time zero", "time", 0},
		{"time above 16", "time", 17},
		{"threads zero", "threads", 0},
		{"threads above 16", "threads", 64},
		{"threads overflow uint8", "threads", 256},
		{"short salt", "salt", base64.StdEncoding.EncodeToString(make([]byte, 8))},
		{"long salt", "salt", base64.StdEncoding.EncodeToString(make([]byte, 65))},
		{"other kdf", "name", "scrypt"},
		{"time as string", "time", "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := mutateJSON(t, data, func(m map[string]any) { kdf(m)[tt.field] = tt.value })
			if _, err := keys.ParseKeyFile(bad); !errors.Is(err, keys.ErrInvalidKeyFile) {
				t.Fatalf("ParseKeyFile error = %v, want ErrInvalidKeyFile", err)
			}
		})
	}
}

func TestParseKeyFileLimits(t *testing.T) {
	data, err := os.ReadFile(mustWriteKey(t, mustGenerate(t, keys.Ed25519)))
	if err != nil {
		t.Fatal(err)
	}
	padded := append(bytes.Repeat([]byte(" "), keys.MaxKeyFileSize), data...)
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not json", []byte("-----BEGIN PRIVATE KEY-----")},
		{"over size limit", padded},
		{"trailing object", append(append([]byte{}, data...), data...)},
		{"array", []byte("[]")},
		{"ciphertext too long", mutateJSON(t, data, func(m map[string]any) {
			m["ciphertext"] = base64.StdEncoding.EncodeToString(make([]byte, 2048))
		})},
		{"ciphertext only a tag", mutateJSON(t, data, func(m map[string]any) {
			m["ciphertext"] = base64.StdEncoding.EncodeToString(make([]byte, 16))
		})},
		{"short nonce", mutateJSON(t, data, func(m map[string]any) {
			m["nonce"] = base64.StdEncoding.EncodeToString(make([]byte, 8))
		})},
		{"public not pkix", mutateJSON(t, data, func(m map[string]any) { m["public"] = "AAAA" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := keys.ParseKeyFile(tt.data); !errors.Is(err, keys.ErrInvalidKeyFile) {
				t.Fatalf("ParseKeyFile error = %v, want ErrInvalidKeyFile", err)
			}
		})
	}
	if _, err := keys.ParseKeyFile(data); err != nil {
		t.Fatalf("ParseKeyFile of the untouched file: %v", err)
	}
}

func TestReadKeyFileRejectsLargeAndSpecialFiles(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.key")
	if err := os.WriteFile(big, make([]byte, keys.MaxKeyFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{big, t.TempDir(), "/dev/null", filepath.Join(t.TempDir(), "missing")} {
		if _, err := keys.ReadPublicKey(path); err == nil {
			t.Errorf("ReadPublicKey(%s) succeeded", path)
		}
	}
}

func TestWriteKeyFileRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.key")
	if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling.key")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	s := mustGenerate(t, keys.Ed25519)
	for _, path := range []string{existing, dangling} {
		if err := keys.WriteKeyFile(path, s, testPassphrase, fastKDF); !errors.Is(err, fs.ErrExist) {
			t.Errorf("WriteKeyFile(%s) error = %v, want fs.ErrExist", filepath.Base(path), err)
		}
	}
	if got, _ := os.ReadFile(existing); string(got) != "keep me" {
		t.Fatalf("existing file changed to %q", got)
	}
	assertDirEntries(t, dir, "dangling.key", "existing.key")
}

// assertDirEntries checks no temporary files were left behind.
func assertDirEntries(tb testing.TB, dir string, want ...string) {
	tb.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if len(got) != len(want) {
		tb.Fatalf("dir entries = %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			tb.Fatalf("dir entries = %v, want %v", got, want)
		}
	}
}

func TestKeyFileModeAndNoPlaintext(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(string(alg), func(t *testing.T) {
			s := mustGenerate(t, alg)
			path := mustWriteKey(t, s)
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("mode = %v, want 0600", st.Mode().Perm())
			}
			assertDirEntries(t, filepath.Dir(path), "signing.key")
			data, _ := os.ReadFile(path)
			for name, secret := range secretEncodings(t, s) {
				if bytes.Contains(data, secret) {
					t.Errorf("key file contains the %s", name)
				}
			}
		})
	}
}

// secretEncodings lists the private key in every form that could leak into
// a file by mistake: PKCS#8 DER raw, base64 and hex, and the raw scalar.
func secretEncodings(tb testing.TB, s crypto.Signer) map[string][]byte {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(s)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]byte{
		"PKCS#8 DER":        der,
		"PKCS#8 DER base64": []byte(base64.StdEncoding.EncodeToString(der)),
		"PKCS#8 DER hex":    []byte(hex.EncodeToString(der)),
	}
	switch k := s.(type) {
	case ed25519.PrivateKey:
		out["seed"] = k.Seed()
		out["seed base64"] = []byte(base64.StdEncoding.EncodeToString(k.Seed()))
	case *ecdsa.PrivateKey:
		d, _ := k.Bytes()
		out["scalar"] = d
		out["scalar base64"] = []byte(base64.StdEncoding.EncodeToString(d))
	}
	return out
}

func TestWriteKeyFileValidatesInput(t *testing.T) {
	s := mustGenerate(t, keys.Ed25519)
	tests := []struct {
		name string
		pass []byte
		kdf  keys.KDFParams
		want error
	}{
		{"short passphrase", []byte("elevenbytes"), fastKDF, keys.ErrPassphraseTooShort},
		{"empty passphrase", nil, fastKDF, keys.ErrPassphraseTooShort},
		{"memory below floor", testPassphrase, keys.KDFParams{Time: 1, MemoryKiB: 4 << 10, Threads: 1}, nil},
		{"time zero", testPassphrase, keys.KDFParams{Time: 0, MemoryKiB: 8 << 10, Threads: 1}, nil},
		{"threads zero", testPassphrase, keys.KDFParams{Time: 1, MemoryKiB: 8 << 10}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k")
			err := keys.WriteKeyFile(path, s, tt.pass, tt.kdf)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("WriteKeyFile error = %v, want %v", err, tt.want)
			}
			if _, statErr := os.Lstat(path); !errors.Is(statErr, fs.ErrNotExist) {
				t.Fatalf("file written despite error: %v", statErr)
			}
		})
	}
}

// TestWriteKeyFileDefaultKDF: the zero KDFParams selects DefaultKDF.
func TestWriteKeyFileDefaultKDF(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Argon2id with 64 MiB")
	}
	path := filepath.Join(t.TempDir(), "k")
	if err := keys.WriteKeyFile(path, mustGenerate(t, keys.Ed25519), testPassphrase, keys.KDFParams{}); err != nil {
		t.Fatal(err)
	}
	kf, err := keys.OpenKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if kf.KDF() != keys.DefaultKDF {
		t.Fatalf("KDF = %+v, want DefaultKDF %+v", kf.KDF(), keys.DefaultKDF)
	}
}

type opaqueSigner struct{ crypto.Signer }

func TestWriteKeyFileRefusesUnexportableKeys(t *testing.T) {
	// A signer that only wraps a key (as a token's does) has no private
	// bytes to write.
	s := opaqueSigner{mustGenerate(t, keys.ECDSAP256)}
	err := keys.WriteKeyFile(filepath.Join(t.TempDir(), "k"), s, testPassphrase, fastKDF)
	if err == nil {
		t.Fatal("WriteKeyFile accepted a non-exportable signer")
	}
}
