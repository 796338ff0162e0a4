package uboot_test

import (
	"bytes"
	"maps"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/agent/uboot"
)

// FuzzDecode: any bytes either fail cleanly or decode to variables that
// re-encode into the same size and decode back identically.
func FuzzDecode(f *testing.F) {
	f.Add(mustEncode(f, map[string]string{"a": "1", "bootcmd": "run x"}, 64, false, 0), false)
	f.Add(mustEncode(f, map[string]string{"koshin_slot": "B"}, 64, true, 255), true)
	f.Add(withCRC("junk\x00=x\x00a=1\x00a=2\x00\x00"), false)
	f.Add(withCRC("a=1\x00b"), false)
	f.Fuzz(func(t *testing.T, b []byte, redundant bool) {
		img, err := uboot.Decode(b, redundant)
		if err != nil {
			return
		}
		enc, err := uboot.Encode(img, len(b), redundant)
		if err != nil {
			t.Fatalf("decoded image does not re-encode: %v", err)
		}
		again, err := uboot.Decode(enc, redundant)
		if err != nil || !maps.Equal(again.Vars, img.Vars) || again.Flags != img.Flags {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, img)
		}
		if enc2, _ := uboot.Encode(again, len(b), redundant); !bytes.Equal(enc, enc2) {
			t.Fatal("encoding is not canonical")
		}
	})
}

// FuzzParseFwEnvConfig: any text either fails or yields a valid config.
func FuzzParseFwEnvConfig(f *testing.F) {
	f.Add("/dev/mmcblk0 0x400000 0x4000\n/dev/mmcblk0 0x404000 0x4000 0x200 1\n")
	f.Add("# c\n/boot/uboot.env 010 4000 # x\n")
	f.Add("/dev/mtd1 0 0x10000 0x10000 1 0\n")
	f.Fuzz(func(t *testing.T, in string) {
		cfg, err := uboot.ParseFwEnvConfig(strings.NewReader(in))
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("parsed config does not validate: %v", err)
		}
		for _, loc := range cfg.Copies {
			if loc.Offset < 0 || loc.Size > uboot.MaxSize || loc.Offset+loc.Size < loc.Offset {
				t.Fatalf("bad location %+v", loc)
			}
		}
	})
}
