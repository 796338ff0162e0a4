package uboot_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/agent/uboot"
)

func TestParseFwEnvConfig(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []uboot.Location
	}{
		{"single", "/dev/mmcblk0 0x400000 0x4000\n",
			[]uboot.Location{{"/dev/mmcblk0", 0x400000, 0x4000}}},
		{"redundant with comments and sectors",
			"# MMC environment\n\n/dev/mmcblk0boot1 0x3E0000 0x4000 0x200 # copy 1\n  /dev/mmcblk0boot1\t0x3F0000 4000 0x200 0x20\n",
			[]uboot.Location{{"/dev/mmcblk0boot1", 0x3E0000, 0x4000}, {"/dev/mmcblk0boot1", 0x3F0000, 0x4000}}},
		{"decimal and octal offsets, hex size without 0x", "/boot/uboot.env 4096 2000\n/boot/uboot.env 040000 0x2000",
			[]uboot.Location{{"/boot/uboot.env", 4096, 0x2000}, {"/boot/uboot.env", 0o40000, 0x2000}}},
		{"size written in decimal is hex, as in libubootenv", "/f 0 16384",
			[]uboot.Location{{"/f", 0, 0x16384}}},
		{"CRLF", "/f 0 0x100\r\n", []uboot.Location{{"/f", 0, 0x100}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := uboot.ParseFwEnvConfig(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Copies, tt.want) || cfg.LockPath != "" {
				t.Fatalf("got %+v, want %+v", cfg, tt.want)
			}
		})
	}
}

func TestParseFwEnvConfigErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", "# nothing\n"},
		{"too few fields", "/dev/mmcblk0 0x400000\n"},
		{"too many fields", "/f 0 0x100 1 2 3 4\n"},
		{"bad offset", "/f 0xZZ 0x100\n"},
		{"negative offset", "/dev/mmcblk0 -0x4000 0x4000\n"},
		{"signed size", "/f 0 +100\n"},
		{"bad sector field", "/f 0 0x100 sector\n"},
		{"zero size", "/f 0 0\n"},
		{"size over MaxSize", "/f 0 0x1000000\n"},
		{"relative path", "uboot.env 0 0x100\n"},
		{"mtd", "/dev/mtd1 0 0x10000 0x10000\n"},
		{"three copies", "/a 0 0x100\n/b 0 0x100\n/c 0 0x100\n"},
		{"different sizes", "/a 0 0x100\n/b 0 0x200\n"},
		{"overlapping copies", "/a 0 0x100\n/a 0x80 0x100\n"},
		{"offset overflow", "/a 0xffffffffffffffff 0x100\n"},
		{"oversized file", "/a 0 0x100\n#" + strings.Repeat("x", 70<<10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := uboot.ParseFwEnvConfig(strings.NewReader(tt.in))
			if !errors.Is(err, uboot.ErrConfig) {
				t.Fatalf("got %+v, err %v; want ErrConfig", cfg, err)
			}
		})
	}
}

// Adjacent copies in one file are fine; only overlap is refused.
func TestConfigAdjacentCopies(t *testing.T) {
	cfg := uboot.Config{Copies: []uboot.Location{{"/a", 0x100, 0x100}, {"/a", 0, 0x100}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}
