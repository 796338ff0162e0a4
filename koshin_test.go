package koshin_test

import (
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

// MustDevice returns a valid device with a fresh Ed25519 identity.
func MustDevice(tb testing.TB, serial, hw string) *koshin.Device {
	tb.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return &koshin.Device{
		ID: koshin.DeviceID(der), Serial: serial, HardwareID: hw, PublicKey: der,
		Status: koshin.DeviceActive, EnrolledAt: time.Unix(1e9, 0),
	}
}

func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := koshin.ErrorCode(err); got != code {
		tb.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

func TestErrorCodeAndMessage(t *testing.T) {
	tests := []struct {
		err       error
		code, msg string
	}{
		{nil, "", ""},
		{koshin.Errorf(koshin.ENOTFOUND, "Device %s not found.", "x"), koshin.ENOTFOUND, "Device x not found."},
		{fmt.Errorf("find: %w", koshin.Errorf(koshin.ECONFLICT, "Taken.")), koshin.ECONFLICT, "Taken."},
		{errors.New("disk I/O error: /var/lib/koshin"), koshin.EINTERNAL, "Internal error."},
		{koshin.Internal(errors.New("secret detail")), koshin.EINTERNAL, "Internal error."},
	}
	for _, tt := range tests {
		if got := koshin.ErrorCode(tt.err); got != tt.code {
			t.Errorf("ErrorCode(%v) = %q, want %q", tt.err, got, tt.code)
		}
		if got := koshin.ErrorMessage(tt.err); got != tt.msg {
			t.Errorf("ErrorMessage(%v) = %q, want %q", tt.err, got, tt.msg)
		}
	}
	cause := errors.New("cause")
	if !errors.Is(koshin.Internal(cause), cause) {
		t.Error("Internal does not unwrap to its cause")
	}
}

func TestLimit(t *testing.T) {
	for _, tt := range []struct{ in, want int }{{0, koshin.DefaultLimit}, {1, 1}, {koshin.MaxLimit, koshin.MaxLimit}} {
		if got, err := koshin.Limit(tt.in); err != nil || got != tt.want {
			t.Errorf("Limit(%d) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, n := range []int{-1, koshin.MaxLimit + 1} {
		_, err := koshin.Limit(n)
		wantCode(t, err, koshin.EINVALID)
	}
}

func TestSecret(t *testing.T) {
	a, b := koshin.NewSecret(), koshin.NewSecret()
	if a == b || len(a) < 40 {
		t.Fatalf("secrets %q %q not random or too short", a, b)
	}
	if string(koshin.HashSecret(a)) == string(koshin.HashSecret(b)) || len(koshin.HashSecret(a)) != 32 {
		t.Fatal("bad secret hash")
	}
}
