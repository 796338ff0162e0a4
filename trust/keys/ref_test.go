package keys_test

import (
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/trust/keys"
)

func fixedPassphrase(pass []byte, prompts *[]string) keys.PassphraseFunc {
	return func(prompt string) ([]byte, error) {
		*prompts = append(*prompts, prompt)
		return append([]byte(nil), pass...), nil
	}
}

func TestOpenFileReferences(t *testing.T) {
	s := mustGenerate(t, keys.Ed25519)
	path := mustWriteKey(t, s)
	wantID, _ := keys.KeyID(s.Public())
	rel := relativeTo(t, path)
	for _, ref := range []string{path, "file:" + path, "file://" + path, "file:" + rel, rel} {
		t.Run(ref, func(t *testing.T) {
			var prompts []string
			got, err := keys.Open(ref, fixedPassphrase(testPassphrase, &prompts))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer keys.CloseSigner(got)
			if id, _ := keys.KeyID(got.Public()); id != wantID {
				t.Fatalf("key ID = %s, want %s", id, wantID)
			}
			if len(prompts) != 1 || !strings.Contains(prompts[0], wantID[:16]) {
				t.Fatalf("prompts = %q, want one naming key %s", prompts, wantID[:16])
			}
			pub, err := keys.Public(ref)
			if err != nil {
				t.Fatalf("Public: %v", err)
			}
			if id, _ := keys.KeyID(pub); id != wantID {
				t.Fatalf("Public key ID = %s, want %s", id, wantID)
			}
		})
	}
}

// relativeTo changes into the key's directory for the test so that a
// relative reference resolves.
func relativeTo(t *testing.T, path string) string {
	t.Chdir(filepath.Dir(path))
	return filepath.Base(path)
}

func TestOpenFileErrors(t *testing.T) {
	path := mustWriteKey(t, mustGenerate(t, keys.ECDSAP256))
	var prompts []string
	if _, err := keys.Open(path, fixedPassphrase([]byte("not the passphrase"), &prompts)); !errors.Is(err, keys.ErrBadPassphrase) {
		t.Errorf("wrong passphrase: error = %v, want ErrBadPassphrase", err)
	}
	if _, err := keys.Open(path, nil); !errors.Is(err, keys.ErrNoPassphrase) {
		t.Errorf("nil PassphraseFunc: error = %v, want ErrNoPassphrase", err)
	}
	failing := func(string) ([]byte, error) { return nil, keys.ErrNoPassphrase }
	if _, err := keys.Open(path, failing); !errors.Is(err, keys.ErrNoPassphrase) {
		t.Errorf("failing PassphraseFunc: error = %v, want ErrNoPassphrase", err)
	}
	prompts = nil
	missing := filepath.Join(t.TempDir(), "missing.key")
	if _, err := keys.Open(missing, fixedPassphrase(testPassphrase, &prompts)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: error = %v, want os.ErrNotExist", err)
	}
	if len(prompts) != 0 {
		t.Errorf("asked for a passphrase for a missing file: %q", prompts)
	}
}

func TestOpenRejectsReferences(t *testing.T) {
	for _, ref := range []string{"", "file:", "tpm:handle=0x81000001", "https://example.com/k.key", "file://host/k.key", "pkcs11:token=t"} {
		t.Run(ref, func(t *testing.T) {
			never := func(string) ([]byte, error) { t.Fatal("asked for a secret"); return nil, nil }
			if _, err := keys.Open(ref, never); !errors.Is(err, keys.ErrInvalidRef) {
				t.Errorf("Open error = %v, want ErrInvalidRef", err)
			}
			if _, err := keys.Public(ref); !errors.Is(err, keys.ErrInvalidRef) {
				t.Errorf("Public error = %v, want ErrInvalidRef", err)
			}
		})
	}
}

type closeCounter struct {
	crypto.Signer
	n int
}

func (c *closeCounter) Close() error { c.n++; return nil }

func TestCloseSigner(t *testing.T) {
	c := &closeCounter{Signer: mustGenerate(t, keys.Ed25519)}
	if err := keys.CloseSigner(c); err != nil || c.n != 1 {
		t.Fatalf("CloseSigner = %v, closes = %d", err, c.n)
	}
	if err := keys.CloseSigner(mustGenerate(t, keys.Ed25519)); err != nil {
		t.Fatalf("CloseSigner on an in-memory key: %v", err)
	}
}
