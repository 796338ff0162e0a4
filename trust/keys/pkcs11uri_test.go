package keys_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/koshin-ota/koshin/trust/keys"
)

const softhsmModule = "/usr/lib/softhsm/libsofthsm2.so"

func TestParsePKCS11URI(t *testing.T) {
	tests := []struct {
		uri  string
		want keys.PKCS11Config
	}{
		{
			"pkcs11:token=koshin-root;object=root-1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:KOSHIN_PKCS11_PIN",
			keys.PKCS11Config{ModulePath: softhsmModule, TokenLabel: "koshin-root", ObjectLabel: "root-1", PINSource: "env:KOSHIN_PKCS11_PIN"},
		},
		{
			"pkcs11:object=targets%201;token=My%20Token;id=%01%02%ff;type=private?pin-value=1234&module-path=%2Fopt%2Fp11.so",
			keys.PKCS11Config{ModulePath: "/opt/p11.so", TokenLabel: "My Token", ObjectLabel: "targets 1", ObjectID: []byte{1, 2, 0xff}, PIN: "1234"},
		},
		{
			"pkcs11:token=t;object=o?module-path=/m.so&pin-source=file:/run/secrets/pin",
			keys.PKCS11Config{ModulePath: "/m.so", TokenLabel: "t", ObjectLabel: "o", PINSource: "file:/run/secrets/pin"},
		},
		{
			// No PIN source: Open asks through its PassphraseFunc.
			"pkcs11:token=t;object=a+b?module-path=/m.so",
			keys.PKCS11Config{ModulePath: "/m.so", TokenLabel: "t", ObjectLabel: "a+b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			got, err := keys.ParsePKCS11URI(tt.uri)
			if err != nil {
				t.Fatalf("ParsePKCS11URI: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("config (-want +got):\n%s", diff)
			}
			again, err := keys.ParsePKCS11URI(got.URI())
			if err != nil {
				t.Fatalf("re-parse %s: %v", got.URI(), err)
			}
			if diff := cmp.Diff(got, again); diff != "" {
				t.Fatalf("URI() round trip (-first +second):\n%s", diff)
			}
		})
	}
}

func TestParsePKCS11URIRejects(t *testing.T) {
	const m = "?module-path=/m.so"
	tests := map[string]string{
		"wrong scheme":          "pkcs12:token=t;object=o" + m,
		"no module":             "pkcs11:token=t;object=o",
		"relative module":       "pkcs11:token=t;object=o?module-path=libsofthsm2.so",
		"module-name":           "pkcs11:token=t;object=o?module-name=softhsm2",
		"no token":              "pkcs11:object=o" + m,
		"no object":             "pkcs11:token=t" + m,
		"empty token":           "pkcs11:token=;object=o" + m,
		"token too long":        "pkcs11:token=" + strings.Repeat("a", 33) + ";object=o" + m,
		"repeated attribute":    "pkcs11:token=t;token=u;object=o" + m,
		"unknown path attr":     "pkcs11:token=t;object=o;serial=1" + m,
		"type public":           "pkcs11:token=t;object=o;type=public" + m,
		"bad escape":            "pkcs11:token=t%zz;object=o" + m,
		"control char":          "pkcs11:token=t%0a;object=o" + m,
		"invalid utf-8":         "pkcs11:token=%ff;object=o" + m,
		"empty attribute":       "pkcs11:token=t;;object=o" + m,
		"attribute without =":   "pkcs11:token=t;object" + m,
		"empty id":              "pkcs11:token=t;object=o;id=" + m,
		"empty pin-value":       "pkcs11:token=t;object=o" + m + "&pin-value=",
		"fragment":              "pkcs11:token=t;object=o" + m + "#frag",
		"both pin sources":      "pkcs11:token=t;object=o" + m + "&pin-source=env:P&pin-value=1",
		"bad env name":          "pkcs11:token=t;object=o" + m + "&pin-source=env:1A",
		"relative pin file":     "pkcs11:token=t;object=o" + m + "&pin-source=file:pin.txt",
		"command pin source":    "pkcs11:token=t;object=o" + m + "&pin-source=%7C/bin/getpin",
		"nul in pin":            "pkcs11:token=t;object=o" + m + "&pin-value=1%002",
		"id too long":           "pkcs11:token=t;object=o;id=" + strings.Repeat("%01", 129) + m,
		"too long":              "pkcs11:token=t;object=" + strings.Repeat("o", 5000) + m,
		"unknown query attr":    "pkcs11:token=t;object=o" + m + "&x=1",
		"repeated module path":  "pkcs11:token=t;object=o" + m + "&module-path=/n.so",
		"query before path end": "pkcs11:?token=t;object=o",
	}
	for name, uri := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := keys.ParsePKCS11URI(uri); !errors.Is(err, keys.ErrInvalidRef) {
				t.Fatalf("ParsePKCS11URI(%q) error = %v, want ErrInvalidRef", uri, err)
			}
		})
	}
}

func TestPKCS11ConfigStringRedactsPIN(t *testing.T) {
	cfg := keys.PKCS11Config{ModulePath: softhsmModule, TokenLabel: "t", ObjectLabel: "o", PIN: "s3cret-pin"}
	for _, s := range []string{cfg.String(), fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v", &cfg, cfg, cfg)} {
		if strings.Contains(s, "s3cret-pin") {
			t.Fatalf("String() shows the PIN: %s", s)
		}
	}
	if !strings.Contains(cfg.URI(), "pin-value=s3cret-pin") {
		t.Fatalf("URI() = %s, want the pin-value kept", cfg.URI())
	}
}
