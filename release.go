package koshin

import (
	"context"
	"slices"
	"strings"
	"time"
)

// MaxReleaseCounter bounds release counters so they survive JSON numbers
// (float64) exactly; it equals trust.MaxReleaseCounter.
const MaxReleaseCounter = 1 << 53

// Limits of release fields.
const (
	MaxAdvisories = 64
	MaxHashes     = 4
)

// Release is a target of the image repository imported into the server so
// that rollouts can refer to it. The signed metadata remains the authority:
// devices verify everything here against the image repository themselves,
// so the server's copy only drives selection and reporting.
type Release struct {
	// Name is the target path in the image repository.
	Name   string            `json:"name"`
	Length int64             `json:"length"`
	Hashes map[string]string `json:"hashes"` // algorithm → lowercase hex
	// The signed custom fields (see trust.TargetCustom).
	HardwareIDs    []string `json:"hardware_ids"`
	Component      string   `json:"component"`
	ReleaseCounter uint64   `json:"release_counter"`
	Version        string   `json:"version,omitempty"`
	Channel        string   `json:"channel"`
	Security       bool     `json:"security,omitempty"`
	Advisories     []string `json:"advisories,omitempty"`
	SupportEnd     string   `json:"support_end,omitempty"` // YYYY-MM-DD (EN 303 645 5.3-13)
	SBOMSHA256     string   `json:"sbom_sha256,omitempty"`
	// AdvisorySHA256 is the digest of the release's CSAF advisory, which
	// the image repository publishes next to the payload.
	AdvisorySHA256 string `json:"advisory_sha256,omitempty"`
	Encrypted      bool   `json:"encrypted,omitempty"`
	// Revoked releases are never assigned again (CCDS UPC05).
	Revoked    bool      `json:"revoked,omitempty"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	ImportedAt time.Time `json:"imported_at"`
}

// Channels of the image repository (CCDS UPC03/UPC04).
const (
	ChannelRelease = "release"
	ChannelDev     = "dev"
)

// ValidateReleaseName checks a target path: 1..MaxNameLen bytes of
// A-Z a-z 0-9 . _ + / -, no empty or dot-dot segments.
func ValidateReleaseName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLen || !namePattern.MatchString(name) ||
		strings.HasSuffix(name, "/") || slices.ContainsFunc(strings.Split(name, "/"), badSegment) {
		return Errorf(EINVALID, "Release name must be a target path of 1-%d characters of A-Z a-z 0-9 . _ + / - without empty or dot segments.", MaxNameLen)
	}
	return nil
}

func badSegment(s string) bool { return s == "" || s == "." || s == ".." }

// Validate checks every field.
func (r *Release) Validate() error {
	if err := ValidateReleaseName(r.Name); err != nil {
		return err
	}
	if r.Length <= 0 {
		return Errorf(EINVALID, "Release length must be positive.")
	}
	if err := validateHashes(r.Hashes); err != nil {
		return err
	}
	if len(r.HardwareIDs) == 0 {
		return Errorf(EINVALID, "A release needs at least one hardware ID.")
	}
	if err := validateIDs("hardware ID", r.HardwareIDs, MaxHardwareIDs); err != nil {
		return err
	}
	if err := ValidateID("Component", r.Component); err != nil {
		return err
	}
	if r.ReleaseCounter == 0 || r.ReleaseCounter > MaxReleaseCounter {
		return Errorf(EINVALID, "Release counter must be between 1 and %d.", uint64(MaxReleaseCounter))
	}
	if r.Channel != ChannelRelease && r.Channel != ChannelDev {
		return Errorf(EINVALID, "Channel must be %q or %q.", ChannelRelease, ChannelDev)
	}
	return r.validateInformational()
}

func (r *Release) validateInformational() error {
	if err := validateText("Version", r.Version, MaxShortLen); err != nil {
		return err
	}
	if len(r.Advisories) > MaxAdvisories {
		return Errorf(EINVALID, "At most %d advisories are allowed.", MaxAdvisories)
	}
	for _, a := range r.Advisories {
		if err := ValidateID("Advisory", a); err != nil {
			return err
		}
	}
	if r.SupportEnd != "" {
		if _, err := time.Parse(time.DateOnly, r.SupportEnd); err != nil {
			return Errorf(EINVALID, "Support end must be a YYYY-MM-DD date.")
		}
	}
	if r.SBOMSHA256 != "" {
		if err := validateHex("SBOM digest", r.SBOMSHA256, 64); err != nil {
			return err
		}
	}
	if r.AdvisorySHA256 != "" {
		return validateHex("Advisory digest", r.AdvisorySHA256, 64)
	}
	return nil
}

func validateHashes(h map[string]string) error {
	if len(h) == 0 || len(h) > MaxHashes {
		return Errorf(EINVALID, "A release needs 1-%d hashes.", MaxHashes)
	}
	if _, ok := h["sha256"]; !ok {
		return Errorf(EINVALID, "A release needs a sha256 hash.")
	}
	for alg, v := range h {
		if err := ValidateID("Hash algorithm", alg); err != nil {
			return err
		}
		if len(v) < 32 || len(v) > 128 || len(v)%2 != 0 || !hexPattern.MatchString(v) {
			return Errorf(EINVALID, "Hash %s must be lowercase hex.", alg)
		}
	}
	return validateHex("sha256 hash", h["sha256"], 64)
}

// Fits reports whether the release is signed for hardware ID hw.
func (r *Release) Fits(hw string) bool { return slices.Contains(r.HardwareIDs, hw) }

// ReleaseFilter lists releases in name order.
type ReleaseFilter struct {
	Component      string `json:"component,omitempty"`
	HardwareID     string `json:"hardware_id,omitempty"`
	Channel        string `json:"channel,omitempty"`
	IncludeRevoked bool   `json:"include_revoked,omitempty"`
	After          string `json:"after,omitempty"` // cursor: name
	Limit          int    `json:"limit,omitempty"`
}

// Validate checks the filter.
func (f *ReleaseFilter) Validate() error {
	if err := validateOptionalIDs("Component", f.Component, "Hardware ID", f.HardwareID, "Channel", f.Channel); err != nil {
		return err
	}
	if f.After != "" {
		if err := ValidateReleaseName(f.After); err != nil {
			return err
		}
	}
	_, err := Limit(f.Limit)
	return err
}

// ReleaseStore keeps the imported targets.
type ReleaseStore interface {
	// CreateRelease imports a target and sets ImportedAt. Returns EINVALID,
	// or ECONFLICT if the name exists.
	CreateRelease(ctx context.Context, r *Release) error

	// FindReleaseByName returns ENOTFOUND if absent.
	FindReleaseByName(ctx context.Context, name string) (*Release, error)

	// FindReleases lists releases matching f.
	FindReleases(ctx context.Context, f ReleaseFilter) ([]*Release, error)

	// RevokeRelease marks a release revoked (CCDS UPC05) and, in the same
	// transaction, halts its running and paused rollouts and cancels their
	// not-yet-started assignments. Revoking a revoked release changes
	// nothing. Returns ENOTFOUND.
	RevokeRelease(ctx context.Context, name string, now time.Time) (*Release, error)
}
