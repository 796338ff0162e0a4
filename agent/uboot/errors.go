package uboot

import "errors"

// Error classes returned (wrapped, with context) by this package; test for
// them with errors.Is.
var (
	// ErrInvalidName: a variable name is empty or contains '=' or NUL.
	ErrInvalidName = errors.New("invalid variable name")
	// ErrInvalidValue: a value contains NUL, or a boot helper got an
	// unusable value.
	ErrInvalidValue = errors.New("invalid variable value")
	// ErrTooLarge: the variables do not fit in the environment size.
	ErrTooLarge = errors.New("variables do not fit in the environment")
	// ErrBadCRC: a copy's CRC does not match its data area.
	ErrBadCRC = errors.New("environment CRC mismatch")
	// ErrMalformed: a copy has a valid CRC but cannot be parsed, or has an
	// impossible size.
	ErrMalformed = errors.New("malformed environment")
	// ErrNoValidCopy: no configured copy could be read and verified.
	ErrNoValidCopy = errors.New("no valid environment copy")
	// ErrChanged: another writer changed the environment since Open.
	ErrChanged = errors.New("environment changed since it was read")
	// ErrConfig: the copy locations are unusable.
	ErrConfig = errors.New("invalid environment configuration")
	// ErrNoFallback: the environment lacks what U-Boot needs to fall back
	// from a failing trial slot (bootlimit, altbootcmd).
	ErrNoFallback = errors.New("environment has no boot-count fallback")
)
