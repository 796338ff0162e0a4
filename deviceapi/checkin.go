package deviceapi

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/koshin-ota/koshin/trust"
)

// CheckIn is what a device sends at every poll. Report holds the exact bytes
// of a JSON-encoded Report, and Signature is the device key's signature over
// those bytes (ECDSA P-256 ASN.1 over SHA-256, or Ed25519), so the server can
// keep a report that no one else could have written (CCDS SSS01, SSS04).
//
// Nonce is fresh at every check-in and travels beside the report, not in
// it: the director metadata echoes it (freshness without a clock), and the
// mutual-TLS channel already binds it to the device. Keeping it out of the
// signed bytes lets a device re-sign its report only when the report
// changes, and the server verify each distinct report once: an idle fleet's
// check-ins then cost neither a device signature nor a server verification.
type CheckIn struct {
	Report    json.RawMessage `json:"report"`
	Signature []byte          `json:"signature"`
	Nonce     string          `json:"nonce"`
}

// Validate checks the envelope; the report is validated after its signature.
func (c *CheckIn) Validate() error {
	if len(c.Report) == 0 || len(c.Report) > MaxRequestBody {
		return fmt.Errorf("%w: report must be 1-%d bytes", trust.ErrInvalid, MaxRequestBody)
	}
	if len(c.Signature) == 0 || len(c.Signature) > 256 {
		return fmt.Errorf("%w: signature must be 1-256 bytes", trust.ErrInvalid)
	}
	return ValidateNonce(c.Nonce)
}

// Report is a device's signed version and security report.
type Report struct {
	DeviceID string `json:"device_id"`
	// Time is when the device signed the report, i.e. when its content
	// last changed (or the agent started).
	Time       time.Time   `json:"time"`
	HardwareID string      `json:"hardware_id"`
	Components []Component `json:"components"`
	Slot       SlotState   `json:"slot"`
	Settings   Settings    `json:"settings"`
	Security   Security    `json:"security"`
	// Update is the agent's current update transaction, if any.
	Update *UpdateState `json:"update,omitempty"`
	// AgentVersion is informational.
	AgentVersion string `json:"agent_version,omitempty"`
}

// Component is one installed software component.
type Component struct {
	Name           string `json:"name"`
	Version        string `json:"version"`
	ReleaseCounter uint64 `json:"release_counter"`
	Target         string `json:"target,omitempty"`
}

// SlotState describes the A/B slots.
type SlotState struct {
	Active  string `json:"active"`
	Trial   bool   `json:"trial,omitempty"`
	Healthy bool   `json:"healthy"`
}

// Settings are the device's update settings (CCDS UPE05–UPE07, EN 303 645
// 5.3-6). Defaults on a new device: enabled, automatic, notifications on.
type Settings struct {
	UpdatesEnabled bool   `json:"updates_enabled"`
	Automatic      bool   `json:"automatic"`
	Notifications  bool   `json:"notifications"`
	NotifyTarget   string `json:"notify_target,omitempty"`
}

// Security is the device's security state (CCDS SSS01, SSS02).
type Security struct {
	// BootIntegrity is the result of the secure/measured boot hook:
	// "verified", "unverified" (no hook) or "failed".
	BootIntegrity       string `json:"boot_integrity"`
	FailedVerifications uint32 `json:"failed_verifications"`
	Lockouts            uint32 `json:"lockouts"`
	// Restricted: the agent detected an unauthorised change and now talks
	// only to the update server (EN 303 645 5.7-2).
	Restricted bool `json:"restricted,omitempty"`
}

// UpdateState is the agent's in-flight transaction.
type UpdateState struct {
	Target string `json:"target"`
	State  string `json:"state"`
}

// Validate checks every field's form and size.
func (r *Report) Validate() error {
	if err := trust.ValidateID("device ID", r.DeviceID); err != nil {
		return err
	}
	if err := trust.ValidateID("hardware ID", r.HardwareID); err != nil {
		return err
	}
	if len(r.Components) > MaxComponents {
		return fmt.Errorf("%w: more than %d components", trust.ErrInvalid, MaxComponents)
	}
	for _, c := range r.Components {
		if err := c.validate(); err != nil {
			return err
		}
	}
	if err := r.Slot.validate(); err != nil {
		return err
	}
	if len(r.Settings.NotifyTarget) > maxText || len(r.AgentVersion) > maxShort {
		return fmt.Errorf("%w: text field too long", trust.ErrInvalid)
	}
	if err := r.Security.validate(); err != nil {
		return err
	}
	if r.Update != nil {
		return r.Update.validate()
	}
	return nil
}

func (c *Component) validate() error {
	if err := trust.ValidateID("component", c.Name); err != nil {
		return err
	}
	if len(c.Version) > maxShort || len(c.Target) > maxText {
		return fmt.Errorf("%w: component %s: version or target too long", trust.ErrInvalid, c.Name)
	}
	if c.ReleaseCounter > trust.MaxReleaseCounter {
		return fmt.Errorf("%w: component %s: release counter out of range", trust.ErrInvalid, c.Name)
	}
	return nil
}

func (s *SlotState) validate() error {
	if len(s.Active) > maxShort {
		return fmt.Errorf("%w: slot name too long", trust.ErrInvalid)
	}
	return nil
}

func (s *Security) validate() error {
	switch s.BootIntegrity {
	case "verified", "unverified", "failed":
		return nil
	}
	return fmt.Errorf("%w: boot_integrity %q is not verified, unverified or failed", trust.ErrInvalid, s.BootIntegrity)
}

func (u *UpdateState) validate() error {
	if len(u.Target) > maxText || len(u.State) > maxShort {
		return fmt.Errorf("%w: update state too long", trust.ErrInvalid)
	}
	return nil
}

// ValidateNonce checks a check-in nonce: 16 to trust.MaxNonceLen printable
// ASCII characters (it is echoed in signed metadata and in logs).
func ValidateNonce(n string) error {
	if len(n) < 16 || len(n) > trust.MaxNonceLen {
		return fmt.Errorf("%w: nonce must be 16-%d characters", trust.ErrInvalid, trust.MaxNonceLen)
	}
	for i := 0; i < len(n); i++ {
		if n[i] < 0x20 || n[i] > 0x7e {
			return fmt.Errorf("%w: nonce must be printable ASCII", trust.ErrInvalid)
		}
	}
	return nil
}

// Mode is how a rollout wants the device to proceed.
type Mode string

const (
	ModeAutomatic    Mode = "automatic"
	ModeConsent      Mode = "consent"       // the device's user approves or postpones
	ModeForced       Mode = "forced"        // administrator overrides the user (CCDS UPD11)
	ModeDownloadOnly Mode = "download-only" // fetch and verify, install later
)

// CheckInResponse tells the device when to come back and, if it has an
// assignment, carries the director's targets metadata signed for this device
// with the nonce it sent.
type CheckInResponse struct {
	PollInterval int             `json:"poll_interval"` // seconds
	PollJitter   int             `json:"poll_jitter"`   // seconds, ≤ PollInterval
	Director     json.RawMessage `json:"director,omitempty"`
	Mode         Mode            `json:"mode,omitempty"`
	Rollout      string          `json:"rollout,omitempty"`
}

// Validate checks the response; the director metadata is verified by
// trust/verify, not here.
func (r *CheckInResponse) Validate() error {
	if r.PollInterval < 10 || r.PollInterval > 7*24*3600 {
		return fmt.Errorf("%w: poll_interval %d out of range", trust.ErrInvalid, r.PollInterval)
	}
	if r.PollJitter < 0 || r.PollJitter > r.PollInterval {
		return fmt.Errorf("%w: poll_jitter %d out of range", trust.ErrInvalid, r.PollJitter)
	}
	if len(r.Director) > MaxResponseBody || len(r.Rollout) > maxShort {
		return fmt.Errorf("%w: response field too long", trust.ErrInvalid)
	}
	if len(r.Director) == 0 {
		return nil
	}
	switch r.Mode {
	case ModeAutomatic, ModeConsent, ModeForced, ModeDownloadOnly:
		return nil
	}
	return fmt.Errorf("%w: mode %q", trust.ErrInvalid, r.Mode)
}
