package uboot

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
	"strings"
)

// MaxSize bounds one environment copy so that a bad configuration cannot make
// the agent allocate without limit; U-Boot environments are typically
// 8–256 KiB.
const MaxSize = 4 << 20

// byteOrder of the stored CRC. U-Boot and libubootenv store it as a native
// uint32 of the device's CPU, and the agent runs on that CPU.
var byteOrder = binary.NativeEndian

// Image is the content of one environment copy.
type Image struct {
	Vars map[string]string
	// Flags is the generation counter of a redundant copy; unused (and not
	// stored) for a single-copy environment.
	Flags uint8
}

// headerLen is the size of the CRC and, for a redundant copy, the flags byte.
func headerLen(redundant bool) int {
	if redundant {
		return 5
	}
	return 4
}

// sizeOK reports whether size can hold a copy: the header plus at least an
// empty variable list, and no more than MaxSize.
func sizeOK(size int64, redundant bool) bool {
	return size >= int64(headerLen(redundant))+2 && size <= MaxSize
}

// Decode parses one environment copy of len(b) bytes, verifying its CRC.
// Entries without '=' or with an empty name are skipped and a repeated name
// keeps its last value, as U-Boot and libubootenv do.
func Decode(b []byte, redundant bool) (Image, error) {
	if !sizeOK(int64(len(b)), redundant) {
		return Image{}, fmt.Errorf("%w: size %d", ErrMalformed, len(b))
	}
	data := b[headerLen(redundant):]
	if got, want := byteOrder.Uint32(b), crc32.ChecksumIEEE(data); got != want {
		return Image{}, fmt.Errorf("%w: stored %#08x, computed %#08x", ErrBadCRC, got, want)
	}
	vars, err := parseData(data)
	if err != nil {
		return Image{}, err
	}
	img := Image{Vars: vars}
	if redundant {
		img.Flags = b[4]
	}
	return img, nil
}

// parseData reads the NUL-separated entries up to the empty entry that ends
// the list (or the end of the area when the last entry fills it exactly).
func parseData(data []byte) (map[string]string, error) {
	vars := make(map[string]string)
	for len(data) > 0 && data[0] != 0 {
		end := bytes.IndexByte(data, 0)
		if end < 0 {
			return nil, fmt.Errorf("%w: last entry is not NUL-terminated", ErrMalformed)
		}
		name, value, ok := strings.Cut(string(data[:end]), "=")
		if ok && name != "" {
			vars[name] = value
		}
		data = data[end+1:]
	}
	return vars, nil
}

// Encode builds one environment copy of size bytes: variables sorted by name
// (the order fw_setenv and U-Boot's saveenv write), zero padding, CRC, and
// for a redundant copy img.Flags.
func Encode(img Image, size int, redundant bool) ([]byte, error) {
	if !sizeOK(int64(size), redundant) {
		return nil, fmt.Errorf("%w: size %d outside [%d, %d]", ErrConfig, size, headerLen(redundant)+2, MaxSize)
	}
	buf := make([]byte, size) // zero padding, like saveenv and fw_setenv
	data := buf[headerLen(redundant):]
	if err := putVars(data, img.Vars); err != nil {
		return nil, err
	}
	byteOrder.PutUint32(buf, crc32.ChecksumIEEE(data))
	if redundant {
		buf[4] = img.Flags
	}
	return buf, nil
}

// putVars writes the sorted entries into the zeroed data area; the list
// terminator and the padding are the zeros already there.
func putVars(data []byte, vars map[string]string) error {
	if err := checkVars(vars); err != nil {
		return err
	}
	if need := encodedLen(vars); need > len(data) {
		return fmt.Errorf("%w: need %d bytes, data area is %d", ErrTooLarge, need, len(data))
	}
	off := 0
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		off += copy(data[off:], name)
		data[off] = '='
		off++
		off += copy(data[off:], vars[name])
		off++ // NUL
	}
	return nil
}

// encodedLen is the data-area size vars need, list terminator included.
func encodedLen(vars map[string]string) int {
	n := 1
	for name, value := range vars {
		n += len(name) + 1 + len(value) + 1
	}
	return n
}

func checkVars(vars map[string]string) error {
	for name, value := range vars {
		if err := checkVar(name, value); err != nil {
			return err
		}
	}
	return nil
}

// checkVar enforces what the format can represent: U-Boot splits an entry at
// its first '=' and ends it at NUL, and skips entries with an empty name.
func checkVar(name, value string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if strings.IndexByte(value, 0) >= 0 {
		return fmt.Errorf("%w: %s contains NUL", ErrInvalidValue, name)
	}
	return nil
}

func checkName(name string) error {
	if name == "" || strings.ContainsAny(name, "=\x00") {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	return nil
}
