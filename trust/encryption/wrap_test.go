package encryption_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/encryption"
)

func mustDeviceKey(tb testing.TB) *ecdh.PrivateKey {
	tb.Helper()
	k, err := encryption.GenerateDeviceKey()
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func mustReleaseID(tb testing.TB, path string) string {
	tb.Helper()
	sum := sha256.Sum256([]byte(path))
	id, err := encryption.ReleaseID(path, sum[:])
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

const devA = "3f7a9c0e5b2d41a8e6f0c9b7d5a3e1f2c4b6a8d0e2f4a6c8e0b2d4f6a8c0e2f4"

func TestWrapUnwrap(t *testing.T) {
	dev, ck := mustDeviceKey(t), mustKey(t)
	rel := mustReleaseID(t, "gateway-rootfs-1.4.2.img")
	w, err := encryption.WrapKey(dev.PublicKey(), ck, devA, rel)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != encryption.WrappedKeySize || len(w) > trust.MaxWrappedKeyLen {
		t.Fatalf("wrapped key is %d bytes", len(w))
	}
	got, err := encryption.UnwrapKey(dev, w, devA, rel)
	if err != nil || !bytes.Equal(got, ck) {
		t.Fatalf("UnwrapKey: %x, %v", got, err)
	}
	w2, _ := encryption.WrapKey(dev.PublicKey(), ck, devA, rel)
	if bytes.Equal(w, w2) {
		t.Fatal("two wraps of one key are identical: no fresh encapsulation")
	}
}

func TestUnwrapRefuses(t *testing.T) {
	dev, ck := mustDeviceKey(t), mustKey(t)
	rel := mustReleaseID(t, "gateway-rootfs-1.4.2.img")
	w, err := encryption.WrapKey(dev.PublicKey(), ck, devA, rel)
	if err != nil {
		t.Fatal(err)
	}
	otherRel := mustReleaseID(t, "gateway-rootfs-1.4.3.img")
	for _, tc := range []struct {
		name    string
		priv    *ecdh.PrivateKey
		wrapped []byte
		dev     string
		rel     string
	}{
		{"another device's key", mustDeviceKey(t), w, devA, rel},
		{"another device ID", dev, w, "device-b", rel},
		{"another release", dev, w, devA, otherRel},
		{"truncated", dev, w[:len(w)-1], devA, rel},
		{"extended", dev, append(slices.Clone(w), 0), devA, rel},
		{"empty", dev, nil, devA, rel},
	} {
		if k, err := encryption.UnwrapKey(tc.priv, tc.wrapped, tc.dev, tc.rel); !errors.Is(err, trust.ErrDecrypt) || k != nil {
			t.Errorf("%s: %x, %v; want ErrDecrypt", tc.name, k, err)
		}
	}
	for bit := range len(w) * 8 {
		tampered := slices.Clone(w)
		tampered[bit/8] ^= 1 << (bit % 8)
		if _, err := encryption.UnwrapKey(dev, tampered, devA, rel); !errors.Is(err, trust.ErrDecrypt) {
			t.Fatalf("bit %d flipped: %v, want ErrDecrypt", bit, err)
		}
	}
}

// TestWrapInfoIsUnambiguous moves a character from the device ID to the
// release ID; with plain concatenation both pairs would share an info.
func TestWrapInfoIsUnambiguous(t *testing.T) {
	dev, ck := mustDeviceKey(t), mustKey(t)
	w, err := encryption.WrapKey(dev.PublicKey(), ck, "dev1", "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := encryption.UnwrapKey(dev, w, "dev", "1x"); !errors.Is(err, trust.ErrDecrypt) {
		t.Fatalf("shifted boundary between IDs: %v, want ErrDecrypt", err)
	}
}

func TestWrapInvalidInput(t *testing.T) {
	dev, ck := mustDeviceKey(t), mustKey(t)
	rel := mustReleaseID(t, "a.img")
	p256, _ := ecdh.P256().GenerateKey(rand.Reader)
	for name, err := range map[string]error{
		"short content key":   wrapErr(encryption.WrapKey(dev.PublicKey(), ck[:16], devA, rel)),
		"nil recipient":       wrapErr(encryption.WrapKey(nil, ck, devA, rel)),
		"P-256 recipient":     wrapErr(encryption.WrapKey(p256.PublicKey(), ck, devA, rel)),
		"empty device ID":     wrapErr(encryption.WrapKey(dev.PublicKey(), ck, "", rel)),
		"device ID with NUL":  wrapErr(encryption.WrapKey(dev.PublicKey(), ck, "a\x00b", rel)),
		"empty release ID":    wrapErr(encryption.WrapKey(dev.PublicKey(), ck, devA, "")),
		"long release ID":     wrapErr(encryption.WrapKey(dev.PublicKey(), ck, devA, strings.Repeat("r", encryption.MaxReleaseIDLen+1))),
		"release ID not UTF8": wrapErr(encryption.WrapKey(dev.PublicKey(), ck, devA, "\xff")),
		"unwrap nil key":      wrapErr(encryption.UnwrapKey(nil, make([]byte, encryption.WrappedKeySize), devA, rel)),
		"unwrap P-256 key":    wrapErr(encryption.UnwrapKey(p256, make([]byte, encryption.WrappedKeySize), devA, rel)),
		"unwrap oversize":     wrapErr(encryption.UnwrapKey(dev, make([]byte, trust.MaxWrappedKeyLen+1), devA, rel)),
		"unwrap bad dev ID":   wrapErr(encryption.UnwrapKey(dev, make([]byte, encryption.WrappedKeySize), "a b", rel)),
	} {
		if !errors.Is(err, trust.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func wrapErr(_ []byte, err error) error { return err }

func TestReleaseID(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	id, err := encryption.ReleaseID("fw/a.img", sum[:])
	if want := fmt.Sprintf("fw/a.img@sha256:%x", sum); err != nil || id != want {
		t.Fatalf("ReleaseID = %q, %v; want %q", id, err, want)
	}
	if _, err := encryption.ReleaseID("a.img", sum[:31]); !errors.Is(err, trust.ErrInvalid) {
		t.Errorf("31-byte hash: %v", err)
	}
	if _, err := encryption.ReleaseID("", sum[:]); !errors.Is(err, trust.ErrInvalid) {
		t.Errorf("empty path: %v", err)
	}
	if _, err := encryption.ReleaseID(strings.Repeat("a", encryption.MaxReleaseIDLen), sum[:]); !errors.Is(err, trust.ErrInvalid) {
		t.Errorf("long path: %v", err)
	}
}

// FuzzUnwrapKey must never panic, must classify every failure, and may only
// succeed on the one wrapped key made for this device, device ID and release.
func FuzzUnwrapKey(f *testing.F) {
	dev, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		f.Fatal(err)
	}
	ck := bytes.Repeat([]byte{0x17}, 32)
	const rel = "a.img@sha256:00"
	// Fixed, because WrapKey draws a fresh encapsulation every call and the
	// fuzzing workers must agree on the one valid input. It is also a
	// known-answer check that the wrap format has not changed.
	w, _ := hex.DecodeString("3dc4158967e12b9ea88467150b2057b2effa8abf90f947fe5a4ab26144e9d717" +
		"d4b209d598cf7cc75a2aa03682e292e9384b9cd1f227d9160c3afa258d2d68d8cade6439577e2c747ef39b261768c9fd")
	if k, err := encryption.UnwrapKey(dev, w, devA, rel); err != nil || !bytes.Equal(k, ck) {
		f.Fatalf("fixed wrapped key no longer opens: %v", err)
	}
	f.Add(w, devA, rel)
	f.Add(w[:40], devA, rel)
	f.Add(make([]byte, trust.MaxWrappedKeyLen+1), "d", "r")
	f.Fuzz(func(t *testing.T, wrapped []byte, deviceID, releaseID string) {
		k, err := encryption.UnwrapKey(dev, wrapped, deviceID, releaseID)
		if err != nil {
			if k != nil || !(errors.Is(err, trust.ErrDecrypt) || errors.Is(err, trust.ErrInvalid)) {
				t.Fatalf("unclassified failure: %v", err)
			}
			return
		}
		if !bytes.Equal(k, ck) || !bytes.Equal(wrapped, w) || deviceID != devA || releaseID != rel {
			t.Fatalf("unwrapped %x from %x for (%q, %q)", k, wrapped, deviceID, releaseID)
		}
	})
}
