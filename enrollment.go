package koshin

import (
	"context"
	"time"
)

// PreAuthorization is a factory record uploaded by the issuer: the device
// with this serial, hardware ID and public key may enroll without a token
// (CCDS HLC05 zero-touch enrollment). Each serial and each key appears in at
// most one pre-authorisation, and each is usable once.
type PreAuthorization struct {
	Serial     string `json:"serial"`
	HardwareID string `json:"hardware_id"`
	PublicKey  []byte `json:"public_key"`
	// Group and Tags are applied to the device when it enrolls.
	Group     string    `json:"group,omitempty"`
	Tags      []string  `json:"tags,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// UsedAt and DeviceID are set when the device enrolls.
	UsedAt   time.Time `json:"used_at,omitzero"`
	DeviceID string    `json:"device_id,omitempty"`
}

// MaxPreAuthorizations bounds one upload, so that a single request's
// transaction stays short.
const MaxPreAuthorizations = 10000

// Validate checks the record.
func (p *PreAuthorization) Validate() error {
	if err := ValidateID("Serial", p.Serial); err != nil {
		return err
	}
	if err := ValidateID("Hardware ID", p.HardwareID); err != nil {
		return err
	}
	if err := validatePublicKey(p.PublicKey); err != nil {
		return err
	}
	return validateGroupTags(p.Group, p.Tags)
}

func validateGroupTags(group string, tags []string) error {
	if group != "" {
		if err := ValidateID("Group", group); err != nil {
			return err
		}
	}
	return validateTags(tags)
}

// EnrollmentToken is a one-time, expiring credential an operator hands to a
// device (or an installer) that is not pre-authorised. Stores keep only the
// hash of the secret (see HashSecret), never the secret itself.
type EnrollmentToken struct {
	ID          int64     `json:"id"`
	Hash        []byte    `json:"-"`
	Description string    `json:"description,omitempty"`
	Group       string    `json:"group,omitempty"`
	Tags        []string  `json:"tags,omitempty"`
	CreatedBy   string    `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	UsedAt      time.Time `json:"used_at,omitzero"`
	DeviceID    string    `json:"device_id,omitempty"`
}

// MaxTokenLifetime bounds how long an enrollment token stays valid.
const MaxTokenLifetime = 90 * 24 * time.Hour

// Validate checks the token's fields.
func (t *EnrollmentToken) Validate() error {
	if err := validateSecretHash(t.Hash); err != nil {
		return err
	}
	if err := validateText("Description", t.Description, MaxShortLen); err != nil {
		return err
	}
	if err := ValidateID("Creator", t.CreatedBy); err != nil {
		return err
	}
	if err := validateTime("Expiry", t.ExpiresAt); err != nil {
		return err
	}
	return validateGroupTags(t.Group, t.Tags)
}

// Usable reports whether the token can enroll a device at now.
func (t *EnrollmentToken) Usable(now time.Time) bool {
	return t.UsedAt.IsZero() && now.Before(t.ExpiresAt)
}

// Enrollment is a device's request to join the fleet, already checked by
// the caller (CSR signature, certificate issued). Exactly one path
// authorises it: TokenHash for a one-time token, or nil TokenHash for a
// pre-authorisation matching the device's serial, hardware ID and key.
type Enrollment struct {
	Device    *Device
	TokenHash []byte
}

// Validate checks the device and the token hash.
func (e *Enrollment) Validate() error {
	if e.Device == nil {
		return Errorf(EINVALID, "Enrollment needs a device.")
	}
	if err := e.Device.Validate(); err != nil {
		return err
	}
	if e.TokenHash != nil {
		return validateSecretHash(e.TokenHash)
	}
	return nil
}

// PreAuthorizationFilter lists pre-authorisations in serial order.
type PreAuthorizationFilter struct {
	Unused bool   `json:"unused,omitempty"`
	After  string `json:"after,omitempty"` // cursor: serial
	Limit  int    `json:"limit,omitempty"`
}

// EnrollmentStore admits devices into the fleet (CCDS STS01, STS02, HLC04,
// HLC05). Enrollment is atomic: the credential is consumed and the device
// created in one transaction, so a refused device leaves its token usable
// and two devices racing for one token cannot both win.
type EnrollmentStore interface {
	// CreatePreAuthorizations stores an upload, all or nothing. Returns
	// EINVALID (including more than MaxPreAuthorizations), or ECONFLICT if a
	// serial or key is already pre-authorised, appears twice in the upload,
	// or belongs to an enrolled active device.
	CreatePreAuthorizations(ctx context.Context, ps []*PreAuthorization) error

	// FindPreAuthorizations lists pre-authorisations.
	FindPreAuthorizations(ctx context.Context, f PreAuthorizationFilter) ([]*PreAuthorization, error)

	// DeletePreAuthorization removes one; ENOTFOUND if absent.
	DeletePreAuthorization(ctx context.Context, serial string) error

	// CreateEnrollmentToken stores a token's hash and sets ID and
	// CreatedAt. Returns EINVALID, or ECONFLICT if the hash exists.
	CreateEnrollmentToken(ctx context.Context, t *EnrollmentToken) error

	// FindEnrollmentTokens lists tokens by ID.
	FindEnrollmentTokens(ctx context.Context, p SeqPage) ([]*EnrollmentToken, error)

	// DeleteEnrollmentToken revokes a token; ENOTFOUND if absent.
	DeleteEnrollmentToken(ctx context.Context, id int64) error

	// EnrollDevice consumes the enrollment's credential and creates the
	// device (status active, EnrolledAt now, group and tags from the
	// credential). Returns EINVALID; EUNAUTHORIZED if the token is unknown,
	// used or expired, or no unused pre-authorisation matches serial,
	// hardware ID and key (the message does not say which); ECONFLICT if the
	// key is enrolled already or an active device has the serial.
	EnrollDevice(ctx context.Context, e Enrollment, now time.Time) (*Device, error)
}
