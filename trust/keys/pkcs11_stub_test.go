//go:build !pkcs11

package keys_test

import (
	"errors"
	"testing"

	"github.com/koshin-ota/koshin/trust/keys"
)

// TestNoPKCS11 proves the default build names the fix: rebuild with the
// pkcs11 tag.
func TestNoPKCS11(t *testing.T) {
	const uri = "pkcs11:token=t;object=o?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1"
	cfg, err := keys.ParsePKCS11URI(uri)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.OpenPKCS11(cfg); !errors.Is(err, keys.ErrNoPKCS11) {
		t.Errorf("OpenPKCS11 error = %v, want ErrNoPKCS11", err)
	}
	if _, err := keys.GeneratePKCS11(cfg); !errors.Is(err, keys.ErrNoPKCS11) {
		t.Errorf("GeneratePKCS11 error = %v, want ErrNoPKCS11", err)
	}
	if _, err := keys.Open(uri, nil); !errors.Is(err, keys.ErrNoPKCS11) {
		t.Errorf("Open error = %v, want ErrNoPKCS11", err)
	}
	if _, err := keys.Public(uri); !errors.Is(err, keys.ErrNoPKCS11) {
		t.Errorf("Public error = %v, want ErrNoPKCS11", err)
	}
}
