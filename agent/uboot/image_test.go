package uboot_test

import (
	"bytes"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/agent/uboot"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	vars := map[string]string{
		"bootcmd":     "run koshin_boot_${koshin_slot}",
		"koshin_slot": "B",
		"msg":         "a=b \"c\"\nnext line",
		"empty":       "",
	}
	for _, redundant := range []bool{false, true} {
		b, err := uboot.Encode(uboot.Image{Vars: vars, Flags: 7}, 0x200, redundant)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != 0x200 {
			t.Fatalf("redundant=%v: len %d, want 0x200", redundant, len(b))
		}
		img, err := uboot.Decode(b, redundant)
		if err != nil {
			t.Fatalf("redundant=%v: %v", redundant, err)
		}
		if !maps.Equal(img.Vars, vars) {
			t.Errorf("redundant=%v: vars %q, want %q", redundant, img.Vars, vars)
		}
		if want := map[bool]uint8{false: 0, true: 7}[redundant]; img.Flags != want {
			t.Errorf("redundant=%v: flags %d, want %d", redundant, img.Flags, want)
		}
	}
}

// The data area layout is what U-Boot and fw_setenv produce: sorted entries,
// an empty entry, zero padding.
func TestEncodeLayout(t *testing.T) {
	b, err := uboot.Encode(uboot.Image{Vars: map[string]string{"zz": "1", "aa": "2"}}, 32, false)
	if err != nil {
		t.Fatal(err)
	}
	want := "aa=2\x00zz=1\x00\x00" + strings.Repeat("\x00", 32-4-11)
	if got := string(b[4:]); got != want {
		t.Fatalf("data %q, want %q", got, want)
	}
}

func TestDecodeDetectsCorruption(t *testing.T) {
	b := mustEncode(t, map[string]string{"koshin_slot": "A"}, 64, true, 1)
	for _, i := range []int{0, 3, 4, 5, 10, 63} {
		bad := bytes.Clone(b)
		bad[i] ^= 0x01
		_, err := uboot.Decode(bad, true)
		if i == 4 { // the flags byte is outside the CRC, as in U-Boot
			if err != nil {
				t.Errorf("flip flags byte: %v", err)
			}
			continue
		}
		if !errors.Is(err, uboot.ErrBadCRC) {
			t.Errorf("flip byte %d: err %v, want ErrBadCRC", i, err)
		}
	}
}

func TestDecodeLikeUBoot(t *testing.T) {
	tests := []struct {
		name string
		data string
		want map[string]string
	}{
		{"empty", "\x00\x00", map[string]string{}},
		{"duplicate keeps last", "a=1\x00a=2\x00\x00", map[string]string{"a": "2"}},
		{"entry without = skipped", "junk\x00a=1\x00\x00", map[string]string{"a": "1"}},
		{"empty name skipped", "=x\x00a=1\x00\x00", map[string]string{"a": "1"}},
		{"value with =", "a=b=c\x00\x00", map[string]string{"a": "b=c"}},
		{"stops at empty entry", "a=1\x00\x00b=2\x00", map[string]string{"a": "1"}},
		{"0xff padding", "a=1\x00\x00\xff\xff", map[string]string{"a": "1"}},
		{"last entry fills area", "a=1\x00", map[string]string{"a": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := uboot.Decode(withCRC(tt.data), false)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(img.Vars, tt.want) {
				t.Fatalf("vars %q, want %q", img.Vars, tt.want)
			}
		})
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	if _, err := uboot.Decode(withCRC("a=1\x00b=2"), false); !errors.Is(err, uboot.ErrMalformed) {
		t.Errorf("unterminated entry: err %v, want ErrMalformed", err)
	}
	for _, n := range []int{0, 4, 5} {
		if _, err := uboot.Decode(make([]byte, n), false); !errors.Is(err, uboot.ErrMalformed) {
			t.Errorf("%d bytes: err %v, want ErrMalformed", n, err)
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		size int
		want error
	}{
		{"empty name", map[string]string{"": "x"}, 64, uboot.ErrInvalidName},
		{"= in name", map[string]string{"a=b": "x"}, 64, uboot.ErrInvalidName},
		{"NUL in name", map[string]string{"a\x00": "x"}, 64, uboot.ErrInvalidName},
		{"NUL in value", map[string]string{"a": "x\x00y"}, 64, uboot.ErrInvalidValue},
		// 4 CRC + "a=" + 57 bytes + NUL + list NUL = 65 bytes.
		{"one byte too many", map[string]string{"a": strings.Repeat("v", 57)}, 64, uboot.ErrTooLarge},
		{"size too small", nil, 5, uboot.ErrConfig},
		{"size too large", nil, uboot.MaxSize + 1, uboot.ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := uboot.Encode(uboot.Image{Vars: tt.vars}, tt.size, false)
			if !errors.Is(err, tt.want) || b != nil {
				t.Fatalf("got %d bytes, err %v; want nil, %v", len(b), err, tt.want)
			}
		})
	}
	// The largest value that fits exactly is accepted.
	if _, err := uboot.Encode(uboot.Image{Vars: map[string]string{"a": strings.Repeat("v", 56)}}, 64, false); err != nil {
		t.Fatalf("exact fit: %v", err)
	}
}
