package verify

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/encryption"
)

// encryptedInstall encrypts plain as a release named name and returns the
// Install a director would produce for device devID, plus the device key.
func encryptedInstall(t *testing.T, name string, plain []byte, devID string) (Install, []byte, *DeviceKey) {
	t.Helper()
	ck, err := encryption.NewContentKey()
	if err != nil {
		t.Fatal(err)
	}
	var ct bytes.Buffer
	res, err := encryption.Encrypt(&ct, bytes.NewReader(plain), ck)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(ct.Bytes())
	priv, err := encryption.GenerateDeviceKey()
	if err != nil {
		t.Fatal(err)
	}
	rid, err := encryption.ReleaseID(name, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := encryption.WrapKey(priv.PublicKey(), ck, devID, rid)
	if err != nil {
		t.Fatal(err)
	}
	in := Install{
		Name: name, Length: int64(ct.Len()), Hashes: map[string][]byte{"sha256": sum[:]},
		Custom: trust.TargetCustom{
			Encryption: trust.EncryptionScheme, PlaintextLength: res.PlaintextLength,
			PlaintextSHA256: res.PlaintextSHA256,
		},
		WrappedKey: wrapped,
	}
	return in, ct.Bytes(), &DeviceKey{ID: devID, Private: priv}
}

func readPlain(ct []byte, in Install, key *DeviceKey) ([]byte, error) {
	r, err := OpenPlaintext(NewPayloadReader(bytes.NewReader(ct), in, PayloadOptions{}), in, key)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestOpenPlaintext(t *testing.T) {
	plain := make([]byte, 200_000)
	rand.Read(plain)
	in, ct, key := encryptedInstall(t, "rootfs-2.img", plain, "dev-1")
	got, err := readPlain(ct, in, key)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("round trip: err %v, equal %v", err, bytes.Equal(got, plain))
	}
	// Unencrypted releases pass through untouched.
	clear := Install{Name: "x", Length: 3, Hashes: map[string][]byte{"sha256": sha(t, []byte("abc"))}}
	if got, err := readPlain([]byte("abc"), clear, nil); err != nil || string(got) != "abc" {
		t.Fatalf("plaintext release: %q, %v", got, err)
	}
}

func sha(t *testing.T, b []byte) []byte {
	t.Helper()
	s := sha256.Sum256(b)
	return s[:]
}

func TestOpenPlaintextRefuses(t *testing.T) {
	plain := bytes.Repeat([]byte("koshin"), 30_000)
	other, _ := encryption.GenerateDeviceKey()
	tests := []struct {
		name   string
		mutate func(in *Install, ct []byte, key *DeviceKey) (*DeviceKey, []byte)
		want   error
	}{
		{"other device ID", func(in *Install, ct []byte, k *DeviceKey) (*DeviceKey, []byte) {
			return &DeviceKey{ID: "dev-2", Private: k.Private}, ct
		}, trust.ErrDecrypt},
		{"other device key", func(in *Install, ct []byte, k *DeviceKey) (*DeviceKey, []byte) {
			return &DeviceKey{ID: k.ID, Private: other}, ct
		}, trust.ErrDecrypt},
		{"no device key", func(in *Install, ct []byte, k *DeviceKey) (*DeviceKey, []byte) { return nil, ct }, trust.ErrDecrypt},
		{"no wrapped key", func(in *Install, ct []byte, k *DeviceKey) (*DeviceKey, []byte) {
			in.WrappedKey = nil
			return k, ct
		}, trust.ErrDecrypt},
		{"plaintext hash differs", func(in *Install, ct []byte, k *DeviceKey) (*DeviceKey, []byte) {
			in.Custom.PlaintextSHA256 = "00" + in.Custom.PlaintextSHA256[2:]
			return k, ct
		}, trust.ErrMismatch},
		{"plaintext shorter than signed", func(in *Install, ct []byte, k *DeviceKey) (*DeviceKey, []byte) {
			in.Custom.PlaintextLength++
			return k, ct
		}, trust.ErrMismatch},
		{"plaintext longer than signed", func(in *Install, ct []byte, k *DeviceKey) (*DeviceKey, []byte) {
			in.Custom.PlaintextLength--
			return k, ct
		}, trust.ErrTooLong},
		{"unknown scheme", func(in *Install, ct []byte, k *DeviceKey) (*DeviceKey, []byte) {
			in.Custom.Encryption = "rot13"
			return k, ct
		}, trust.ErrInvalid},
		{"tampered ciphertext", func(in *Install, ct []byte, k *DeviceKey) (*DeviceKey, []byte) {
			ct = bytes.Clone(ct)
			ct[len(ct)/2] ^= 1
			return k, ct
		}, trust.ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, ct, key := encryptedInstall(t, "app.img", plain, "dev-1")
			key, ct = tt.mutate(&in, ct, key)
			if _, err := readPlain(ct, in, key); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}
