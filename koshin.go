// Package koshin is the update server's domain: the fleet's devices and their
// enrollment, the releases imported from the image repository, phased
// rollouts and the per-device assignments they create, device events,
// operators with their API tokens, and the tamper-evident audit log.
//
// The package holds types, their validation, the pure rules of the rollout
// engine (phase arithmetic, stratified sampling, failure thresholds, phase
// advance, maintenance windows, rate limits, login lockout) and the store
// interfaces that adapters implement: package sqlite for a single node and a
// PostgreSQL package for scale-out, both held to one conformance suite in
// package storetest. It imports only the standard library, so the rules can
// be tested without a database and reused by the CLI and the simulator.
//
// Errors returned by every service are *Error values with a code (ENOTFOUND,
// ECONFLICT, EINVALID, …) and a message safe to show to callers; see
// ErrorCode and ErrorMessage.
//
// Time is always a parameter or an injected clock; nothing in this package
// reads the wall clock.
package koshin

import (
	"regexp"
	"time"
)

// Size limits shared by the domain types. Every input is bounded before it
// reaches a store (EN 303 645 5.13-1); the limits also bound the work a
// single request can cause.
const (
	MaxIDLen       = 128  // identifiers: serials, hardware IDs, groups, tags
	MaxNameLen     = 255  // release (target) names
	MaxTextLen     = 1024 // free text: event details, audit details, reasons
	MaxShortLen    = 128  // short text: versions, event reasons
	MaxTags        = 64   // tags per device
	MaxHardwareIDs = 64   // hardware IDs per release or selector
	MaxComponents  = 32   // installed components per device report
)

var (
	idPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:+/-]*$`)
	tagPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:+/=-]*$`)
	hexPattern  = regexp.MustCompile(`^[0-9a-f]+$`)
	namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+/-]*$`)
)

// ValidateID checks an identifier (serial, hardware ID, group, component):
// 1..MaxIDLen bytes of A-Z a-z 0-9 . _ : + / - starting with a letter or
// digit. It matches the trust package's rule so that identifiers signed
// into metadata and identifiers stored by the server agree.
func ValidateID(what, s string) error {
	if len(s) == 0 || len(s) > MaxIDLen || !idPattern.MatchString(s) {
		return Errorf(EINVALID, "%s must be 1-%d characters of A-Z a-z 0-9 . _ : + / - starting with a letter or digit.", what, MaxIDLen)
	}
	return nil
}

// ValidateTag checks a tag: like an identifier, and '=' is allowed so that
// tags can be key=value pairs (region=eu).
func ValidateTag(s string) error {
	if len(s) == 0 || len(s) > MaxIDLen || !tagPattern.MatchString(s) {
		return Errorf(EINVALID, "Tag must be 1-%d characters of A-Z a-z 0-9 . _ : + / = - starting with a letter or digit.", MaxIDLen)
	}
	return nil
}

func validateIDs(what string, ids []string, max int) error {
	if len(ids) > max {
		return Errorf(EINVALID, "At most %d %ss are allowed.", max, what)
	}
	for _, id := range ids {
		if err := ValidateID(what, id); err != nil {
			return err
		}
	}
	return nil
}

func validateTags(tags []string) error {
	if len(tags) > MaxTags {
		return Errorf(EINVALID, "At most %d tags are allowed.", MaxTags)
	}
	for _, t := range tags {
		if err := ValidateTag(t); err != nil {
			return err
		}
	}
	return nil
}

func validateHex(what, s string, n int) error {
	if len(s) != n || !hexPattern.MatchString(s) {
		return Errorf(EINVALID, "%s must be %d lowercase hex digits.", what, n)
	}
	return nil
}

func validateText(what, s string, max int) error {
	if len(s) > max {
		return Errorf(EINVALID, "%s must be at most %d bytes.", what, max)
	}
	return nil
}

func validateTime(what string, t time.Time) error {
	if t.IsZero() {
		return Errorf(EINVALID, "%s is required.", what)
	}
	return nil
}
