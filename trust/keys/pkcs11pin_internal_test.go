package keys

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestPKCS11PIN(t *testing.T) {
	dir := t.TempDir()
	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte("4321\r\nsecond line ignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KOSHIN_TEST_PIN", "9876")
	tests := []struct {
		name    string
		cfg     PKCS11Config
		want    string
		wantErr error
	}{
		{"pin-value", PKCS11Config{PIN: "1234"}, "1234", nil},
		{"env", PKCS11Config{PINSource: "env:KOSHIN_TEST_PIN"}, "9876", nil},
		{"file first line", PKCS11Config{PINSource: "file:" + pinFile}, "4321", nil},
		{"env unset", PKCS11Config{PINSource: "env:KOSHIN_TEST_PIN_UNSET"}, "", ErrNoPassphrase},
		{"file empty", PKCS11Config{PINSource: "file:" + empty}, "", ErrNoPassphrase},
		{"none", PKCS11Config{}, "", ErrNoPassphrase},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.pin()
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("pin() = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	if _, err := (PKCS11Config{PINSource: "file:" + filepath.Join(dir, "missing")}).pin(); err == nil {
		t.Fatal("missing pin file accepted")
	}
}
