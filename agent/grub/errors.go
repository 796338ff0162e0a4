package grub

import "errors"

// Error classes returned (wrapped, with context) by this package; test for
// them with errors.Is.
var (
	// ErrInvalidName: a name is empty, starts with '#' (GRUB would read the
	// line as a comment) or contains '=', '\\', newline or NUL.
	ErrInvalidName = errors.New("invalid variable name")
	// ErrInvalidValue: a value contains NUL, or a boot helper got an
	// unusable slot name.
	ErrInvalidValue = errors.New("invalid variable value")
	// ErrTooLarge: the content does not fit in the block.
	ErrTooLarge = errors.New("environment block is full")
	// ErrMalformed: the bytes are not an environment block GRUB and koshin
	// would read the same way.
	ErrMalformed = errors.New("malformed environment block")
)
