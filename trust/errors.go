package trust

import "errors"

// Verification failures. Every error returned by the verifier and the payload
// reader wraps exactly one of these, so callers (the agent's reporting engine,
// the simulator, tests) can classify a rejection with errors.Is.
var (
	// ErrExpired: a metadata file is past its expiry (freeze attack).
	ErrExpired = errors.New("metadata expired")
	// ErrRollback: a metadata version or release counter is lower than one
	// already trusted or installed, or below the signed floor.
	ErrRollback = errors.New("rollback")
	// ErrThreshold: not enough valid signatures from distinct authorised keys.
	ErrThreshold = errors.New("signature threshold not met")
	// ErrMismatch: two signed statements disagree (director vs image
	// repository, snapshot vs targets, payload vs its signed hash).
	ErrMismatch = errors.New("mismatch")
	// ErrNotFound: the director names a target the image repository does not
	// hold (director-only compromise), or a requested target does not exist.
	ErrNotFound = errors.New("target not found")
	// ErrNoInstruction: the image repository holds a target but the director
	// did not instruct this device to install it (image-only compromise).
	ErrNoInstruction = errors.New("no director instruction")
	// ErrRevoked: the target has been revoked (removed or below the floor).
	ErrRevoked = errors.New("revoked")
	// ErrWrongHardware: the target is not signed for this device's hardware.
	ErrWrongHardware = errors.New("wrong hardware")
	// ErrWrongChannel: a dev-channel target offered to a release device or the
	// other way round.
	ErrWrongChannel = errors.New("wrong channel")
	// ErrWrongDevice: director metadata signed for another device.
	ErrWrongDevice = errors.New("wrong device")
	// ErrStaleNonce: the director did not echo the nonce this device just
	// sent (replayed or frozen instruction).
	ErrStaleNonce = errors.New("stale director nonce")
	// ErrTooLong: more bytes than the signed length (endless data).
	ErrTooLong = errors.New("longer than signed length")
	// ErrTooSlow: a transfer fell below the minimum throughput (slow retrieval).
	ErrTooSlow = errors.New("transfer below minimum throughput")
	// ErrDecrypt: an encrypted payload failed authentication, was truncated,
	// reordered or extended, or its key was not wrapped for this device.
	ErrDecrypt = errors.New("payload decryption failed")
	// ErrInvalid: malformed metadata, custom fields or input.
	ErrInvalid = errors.New("invalid")
)
