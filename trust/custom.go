package trust

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Channel separates development from release builds (CCDS UPC03/UPC04). A
// repository is created for exactly one channel and refuses targets of the
// other; a device provisioned for ChannelRelease refuses ChannelDev targets.
type Channel string

const (
	ChannelRelease Channel = "release"
	ChannelDev     Channel = "dev"
)

// Validate reports whether c is a known channel.
func (c Channel) Validate() error {
	if c != ChannelRelease && c != ChannelDev {
		return fmt.Errorf("%w: channel %q is not %q or %q", ErrInvalid, c, ChannelRelease, ChannelDev)
	}
	return nil
}

// EncryptionScheme names the payload encryption format (see package
// encryption and docs/encryption.md). Carried in TargetCustom.Encryption.
const EncryptionScheme = "koshin-aes256gcm-chunk64k-v1"

// Limits on custom fields; metadata is attacker-supplied until verified, and
// size limits keep a malicious repository from exhausting a small device.
const (
	// MaxPlaintextLength bounds an encrypted payload's plaintext (the
	// format's own limit, 2^32 chunks of 64 KiB).
	MaxPlaintextLength = 64 << 10 << 32
	MaxHardwareIDs     = 64
	MaxAdvisories      = 64
	maxIDLen           = 128
)

var (
	idPattern      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:+/-]*$`)
	advisoryPatten = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)
)

// TargetCustom is the signed "custom" object of an image-repository target.
// All fields are covered by the targets role's signatures.
type TargetCustom struct {
	HardwareIDs    []string `json:"hardware_ids"`
	Component      string   `json:"component"`
	ReleaseCounter uint64   `json:"release_counter"`
	Version        string   `json:"version"`
	Channel        Channel  `json:"channel"`
	Security       bool     `json:"security,omitempty"`
	Advisories     []string `json:"advisories,omitempty"`
	// SupportEnd is the end of the security-support period for this release
	// as YYYY-MM-DD (EN 303 645 5.3-13).
	SupportEnd string `json:"support_end,omitempty"`
	// SBOMSHA256 is the hex SHA-256 of the release's CycloneDX SBOM.
	SBOMSHA256 string `json:"sbom_sha256,omitempty"`
	// AdvisorySHA256 is the hex SHA-256 of the release's CSAF advisory:
	// the document a device shows its user to say which risks the update
	// removes (EN 303 645 5.3-11). The device gets it from the server, so
	// only the signed digest makes it trustworthy.
	AdvisorySHA256 string `json:"advisory_sha256,omitempty"`
	// Encryption is empty for plaintext payloads, else EncryptionScheme; the
	// target's length and hashes then describe the ciphertext and these two
	// fields the plaintext.
	Encryption      string `json:"encryption,omitempty"`
	PlaintextSHA256 string `json:"plaintext_sha256,omitempty"`
	PlaintextLength int64  `json:"plaintext_length,omitempty"`
}

// Validate checks every field's form and size.
func (c *TargetCustom) Validate() error {
	if len(c.HardwareIDs) == 0 || len(c.HardwareIDs) > MaxHardwareIDs {
		return fmt.Errorf("%w: need 1..%d hardware IDs, have %d", ErrInvalid, MaxHardwareIDs, len(c.HardwareIDs))
	}
	for _, h := range c.HardwareIDs {
		if err := ValidateID("hardware ID", h); err != nil {
			return err
		}
	}
	if err := ValidateID("component", c.Component); err != nil {
		return err
	}
	if c.ReleaseCounter == 0 {
		return fmt.Errorf("%w: release_counter must be at least 1", ErrInvalid)
	}
	if len(c.Version) > maxIDLen {
		return fmt.Errorf("%w: version longer than %d bytes", ErrInvalid, maxIDLen)
	}
	if err := c.Channel.Validate(); err != nil {
		return err
	}
	if len(c.Advisories) > MaxAdvisories {
		return fmt.Errorf("%w: more than %d advisories", ErrInvalid, MaxAdvisories)
	}
	for _, a := range c.Advisories {
		if len(a) > maxIDLen || !advisoryPatten.MatchString(a) {
			return fmt.Errorf("%w: advisory ID %q", ErrInvalid, a)
		}
	}
	if c.SupportEnd != "" {
		if _, err := time.Parse(time.DateOnly, c.SupportEnd); err != nil {
			return fmt.Errorf("%w: support_end %q is not YYYY-MM-DD", ErrInvalid, c.SupportEnd)
		}
	}
	if c.SBOMSHA256 != "" {
		if err := validateSHA256("sbom_sha256", c.SBOMSHA256); err != nil {
			return err
		}
	}
	if c.AdvisorySHA256 != "" {
		if err := validateSHA256("advisory_sha256", c.AdvisorySHA256); err != nil {
			return err
		}
	}
	return c.validateEncryption()
}

func (c *TargetCustom) validateEncryption() error {
	switch c.Encryption {
	case "":
		if c.PlaintextSHA256 != "" || c.PlaintextLength != 0 {
			return fmt.Errorf("%w: plaintext fields set without encryption", ErrInvalid)
		}
		return nil
	case EncryptionScheme:
		if c.PlaintextLength < 0 || c.PlaintextLength > MaxPlaintextLength {
			return fmt.Errorf("%w: plaintext_length %d out of range", ErrInvalid, c.PlaintextLength)
		}
		return validateSHA256("plaintext_sha256", c.PlaintextSHA256)
	default:
		return fmt.Errorf("%w: unknown encryption scheme %q", ErrInvalid, c.Encryption)
	}
}

// FitsHardware reports whether the target is signed for hardware ID hw.
func (c *TargetCustom) FitsHardware(hw string) bool {
	return slices.Contains(c.HardwareIDs, hw)
}

// ValidateID checks an identifier (hardware ID, component, device ID, target
// name part): 1..128 bytes of a conservative character set.
func ValidateID(what, s string) error {
	if len(s) == 0 || len(s) > maxIDLen || !idPattern.MatchString(s) {
		return fmt.Errorf("%w: %s %q must be 1-%d characters of A-Z a-z 0-9 . _ : + / -", ErrInvalid, what, s, maxIDLen)
	}
	return nil
}

func validateSHA256(what, s string) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return fmt.Errorf("%w: %s must be 64 hex digits", ErrInvalid, what)
	}
	return nil
}

// ParseTargetCustom decodes and validates a target's custom object.
func ParseTargetCustom(raw *json.RawMessage) (*TargetCustom, error) {
	if raw == nil {
		return nil, fmt.Errorf("%w: target has no custom fields", ErrInvalid)
	}
	var c TargetCustom
	if err := json.Unmarshal(*raw, &c); err != nil {
		return nil, fmt.Errorf("%w: target custom: %v", ErrInvalid, err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Raw encodes c for metadata.TargetFiles.Custom.
func (c *TargetCustom) Raw() *json.RawMessage {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // plain struct: cannot fail
	}
	raw := json.RawMessage(b)
	return &raw
}
