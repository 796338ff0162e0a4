package uboot

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultLockPath is the lock file libubootenv's fw_printenv and fw_setenv
// flock while they read or write the environment.
const DefaultLockPath = "/var/lock/fw_printenv.lock"

// maxConfigSize bounds a fw_env.config file; real ones are a few lines.
const maxConfigSize = 64 << 10

// Location is where one environment copy lives: Size bytes at Offset in the
// file or block device Path.
type Location struct {
	Path   string
	Offset int64
	Size   int64 // CONFIG_ENV_SIZE: the whole copy, CRC and flags included
}

// Config lists the environment copies: one, or two for a redundant
// environment (CONFIG_SYS_REDUNDAND_ENVIRONMENT).
type Config struct {
	Copies []Location
	// LockPath, when set, is flocked around every read and write so that
	// koshin and fw_setenv never interleave; use DefaultLockPath on devices.
	LockPath string
}

// Redundant reports whether the environment has two copies.
func (c Config) Redundant() bool { return len(c.Copies) == 2 }

// Validate checks that the copies are usable: one or two, absolute paths, not
// MTD/UBI, sizes in range and equal, and not overlapping.
func (c Config) Validate() error {
	if n := len(c.Copies); n < 1 || n > 2 {
		return fmt.Errorf("%w: %d copies, want 1 or 2", ErrConfig, n)
	}
	for i, loc := range c.Copies {
		if err := loc.validate(c.Redundant()); err != nil {
			return fmt.Errorf("copy %d: %w", i, err)
		}
	}
	if !c.Redundant() {
		return nil
	}
	a, b := c.Copies[0], c.Copies[1]
	if a.Size != b.Size {
		return fmt.Errorf("%w: copies differ in size (%#x, %#x)", ErrConfig, a.Size, b.Size)
	}
	if filepath.Clean(a.Path) == filepath.Clean(b.Path) && a.Offset < b.Offset+b.Size && b.Offset < a.Offset+a.Size {
		return fmt.Errorf("%w: copies overlap in %s", ErrConfig, a.Path)
	}
	return nil
}

func (l Location) validate(redundant bool) error {
	switch {
	case !filepath.IsAbs(l.Path):
		return fmt.Errorf("%w: path %q is not absolute", ErrConfig, l.Path)
	case strings.HasPrefix(l.Path, "/dev/mtd") || strings.HasPrefix(l.Path, "/dev/ubi"):
		// Raw flash needs erase-before-write and bad-block handling.
		return fmt.Errorf("%w: %s: MTD/UBI environments are not supported", ErrConfig, l.Path)
	case l.Offset < 0 || l.Offset > MaxOffset:
		return fmt.Errorf("%w: offset %d out of range", ErrConfig, l.Offset)
	case !sizeOK(l.Size, redundant):
		return fmt.Errorf("%w: size %#x outside [%#x, %#x]", ErrConfig, l.Size, headerLen(redundant)+2, MaxSize)
	}
	return nil
}

// MaxOffset keeps Offset+Size far from overflowing int64.
const MaxOffset = 1 << 60

// ParseFwEnvConfig reads the fw_env.config syntax of libubootenv: one line
// per copy, "device offset size [sector-size [sector-count]]", '#' starting
// comments. As in libubootenv the offset is a C integer (decimal, 0x hex or
// leading-0 octal) while the size and sector fields are always hexadecimal,
// with or without 0x: a size written "16384" means 0x16384. Sector fields
// only matter for MTD and are checked but ignored. Unlike libubootenv, a
// malformed line is an error rather than skipped, and LockPath is left empty.
func ParseFwEnvConfig(r io.Reader) (Config, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxConfigSize+1))
	if err != nil {
		return Config{}, fmt.Errorf("read fw_env.config: %w", err)
	}
	if len(b) > maxConfigSize {
		return Config{}, fmt.Errorf("%w: fw_env.config larger than %d bytes", ErrConfig, maxConfigSize)
	}
	var cfg Config
	for i, line := range strings.Split(string(b), "\n") {
		fields := configFields(line)
		if len(fields) == 0 {
			continue
		}
		loc, err := parseConfigLine(fields)
		if err != nil {
			return Config{}, fmt.Errorf("fw_env.config line %d: %w", i+1, err)
		}
		cfg.Copies = append(cfg.Copies, loc)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("fw_env.config: %w", err)
	}
	return cfg, nil
}

// configFields splits a line into fields, dropping everything from the first
// field that starts with '#'.
func configFields(line string) []string {
	fields := strings.Fields(line)
	for i, f := range fields {
		if strings.HasPrefix(f, "#") {
			return fields[:i]
		}
	}
	return fields
}

func parseConfigLine(fields []string) (Location, error) {
	if len(fields) < 3 || len(fields) > 6 {
		return Location{}, fmt.Errorf("%w: %d fields, want: device offset size [sector-size [sectors]]", ErrConfig, len(fields))
	}
	off, err := parseCInt(fields[1])
	if err != nil {
		return Location{}, fmt.Errorf("%w: offset %q: %v", ErrConfig, fields[1], err)
	}
	size, err := parseHex(fields[2])
	if err != nil {
		return Location{}, fmt.Errorf("%w: size %q: %v", ErrConfig, fields[2], err)
	}
	for _, f := range fields[3:] {
		if _, err := parseHex(f); err != nil {
			return Location{}, fmt.Errorf("%w: sector field %q: %v", ErrConfig, f, err)
		}
	}
	return Location{Path: fields[0], Offset: off, Size: size}, nil
}

// parseCInt parses like strtoll with base 0 (what sscanf %lli does), without
// a sign: negative offsets (from the end of a device) are not supported.
func parseCInt(s string) (int64, error) {
	switch {
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		return parseUint(s[2:], 16)
	case len(s) > 1 && s[0] == '0':
		return parseUint(s[1:], 8)
	}
	return parseUint(s, 10)
}

// parseHex parses like sscanf %zx: hexadecimal, optional 0x prefix.
func parseHex(s string) (int64, error) {
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		s = s[2:]
	}
	return parseUint(s, 16)
}

// parseUint rejects signs and values beyond int64.
func parseUint(digits string, base int) (int64, error) {
	v, err := strconv.ParseUint(digits, base, 63)
	return int64(v), err
}
