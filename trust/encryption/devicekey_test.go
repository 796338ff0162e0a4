package encryption_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/encryption"
)

func TestDevicePublicKeyRoundTrip(t *testing.T) {
	for range 20 {
		pub := mustDeviceKey(t).PublicKey()
		s, err := encryption.MarshalDevicePublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encryption.ParseDevicePublicKey(s)
		if err != nil || !got.Equal(pub) {
			t.Fatalf("ParseDevicePublicKey(%q) = %v, %v", s, got, err)
		}
	}
}

func TestMarshalDevicePublicKeyRefuses(t *testing.T) {
	p256, _ := ecdh.P256().GenerateKey(rand.Reader)
	for name, pub := range map[string]*ecdh.PublicKey{"nil": nil, "P-256": p256.PublicKey()} {
		if _, err := encryption.MarshalDevicePublicKey(pub); !errors.Is(err, trust.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func b64hex(h string) string {
	b, err := hex.DecodeString(h)
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestParseDevicePublicKeyRefuses(t *testing.T) {
	valid, _ := encryption.MarshalDevicePublicKey(mustDeviceKey(t).PublicKey())
	ff := strings.Repeat("ff", 30)
	for name, s := range map[string]string{
		"empty":              "",
		"43 chars":           valid[:43],
		"45 chars":           valid + "A",
		"surrounding space":  " " + valid[1:],
		"url alphabet":       "-" + valid[1:],
		"padding bits set":   valid[:42] + "B=", // 43rd char carries 2 stray bits
		"33 bytes in hex":    strings.Repeat("a", 44),
		"top bit set":        b64hex("09" + strings.Repeat("00", 30) + "80"),
		"p (non-canonical)":  b64hex("ed" + ff + "7f"),
		"p+1":                b64hex("ee" + ff + "7f"),
		"2^255-1":            b64hex("ff" + ff + "7f"),
		"zero (low order)":   b64hex(strings.Repeat("00", 32)),
		"one (low order)":    b64hex("01" + strings.Repeat("00", 31)),
		"order 8 point":      b64hex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
		"order 8 point (2)":  b64hex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
		"p-1 (order 2)":      b64hex("ec" + ff + "7f"),
		"whitespace padding": valid[:43] + "\n",
	} {
		if k, err := encryption.ParseDevicePublicKey(s); !errors.Is(err, trust.ErrInvalid) {
			t.Errorf("%s (%q): %v, %v; want ErrInvalid", name, s, k, err)
		}
	}
}

// TestLowOrderPointsAreLowOrder checks the test's own table: an exchange
// with a random key must fail for each point refused as low order.
func TestLowOrderPointsAreLowOrder(t *testing.T) {
	priv := mustDeviceKey(t)
	for _, h := range []string{
		strings.Repeat("00", 32),
		"01" + strings.Repeat("00", 31),
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
		"ec" + strings.Repeat("ff", 30) + "7f",
	} {
		b, _ := hex.DecodeString(h)
		pub, err := ecdh.X25519().NewPublicKey(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := priv.ECDH(pub); err == nil {
			t.Errorf("%s: exchange succeeded; not a low-order point", h)
		}
	}
}

// FuzzParseDevicePublicKey: never panic, classify every failure, and accept
// only the one canonical text of each key.
func FuzzParseDevicePublicKey(f *testing.F) {
	valid, _ := encryption.MarshalDevicePublicKey(mustDeviceKey(f).PublicKey())
	f.Add(valid)
	f.Add(b64hex(strings.Repeat("00", 32)))
	f.Add(b64hex("ed" + strings.Repeat("ff", 30) + "7f"))
	f.Add(strings.Repeat("A", 44))
	f.Fuzz(func(t *testing.T, s string) {
		pub, err := encryption.ParseDevicePublicKey(s)
		if err != nil {
			if pub != nil || !errors.Is(err, trust.ErrInvalid) {
				t.Fatalf("unclassified failure: %v", err)
			}
			return
		}
		back, err := encryption.MarshalDevicePublicKey(pub)
		if err != nil || back != s {
			t.Fatalf("accepted %q, which marshals back as %q (%v)", s, back, err)
		}
	})
}
