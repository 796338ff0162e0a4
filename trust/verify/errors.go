package verify

import (
	"errors"
	"fmt"
	"strings"

	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// ErrProvisioned is returned by Provision when the device already holds
// trusted roots: re-provisioning would let whoever can run the factory tool
// replace the manufacturer's root, so it requires wiping the state first.
var ErrProvisioned = errors.New("device already provisioned")

// sentinels are trust's verification classes; an error already wrapping one
// is returned unchanged by classify.
var sentinels = []error{
	trust.ErrExpired, trust.ErrRollback, trust.ErrThreshold, trust.ErrMismatch,
	trust.ErrNotFound, trust.ErrNoInstruction, trust.ErrRevoked,
	trust.ErrWrongHardware, trust.ErrWrongChannel, trust.ErrWrongDevice,
	trust.ErrStaleNonce, trust.ErrTooLong, trust.ErrTooSlow, trust.ErrDecrypt,
	trust.ErrInvalid,
}

// classify maps go-tuf's error types onto trust's sentinels, keeping
// go-tuf's error wrapped too so logs show the precise cause.
func classify(err error) error {
	if err == nil {
		return nil
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return err
		}
	}
	return fmt.Errorf("%w: %w", sentinelFor(err), err)
}

func sentinelFor(err error) error {
	switch {
	case errors.Is(err, &metadata.ErrExpiredMetadata{}):
		return trust.ErrExpired
	case errors.Is(err, &metadata.ErrBadVersionNumber{}):
		return trust.ErrRollback
	case errors.Is(err, &metadata.ErrUnsignedMetadata{}):
		return trust.ErrThreshold
	case errors.Is(err, &metadata.ErrLengthOrHashMismatch{}):
		return trust.ErrMismatch
	case errors.Is(err, &metadata.ErrDownloadLengthMismatch{}):
		return trust.ErrTooLong
	case errors.Is(err, &metadata.ErrValue{}) && strings.Contains(err.Error(), "threshold"):
		// go-tuf reports a role threshold below 1 as a value error.
		return trust.ErrThreshold
	default:
		return trust.ErrInvalid
	}
}

// guard runs a go-tuf call on untrusted metadata. go-tuf dereferences
// optional JSON objects without nil checks (a target, role, key or meta entry
// given as null panics), so a hostile or buggy repository could crash the
// agent; the panic becomes an ErrInvalid and the caller discards the
// partially updated trusted set.
func guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: malformed metadata: %v", trust.ErrInvalid, r)
		}
	}()
	return classify(f())
}
