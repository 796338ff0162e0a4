package koshin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"
)

// DeviceStatus is a device's lifecycle state.
type DeviceStatus string

const (
	// DeviceActive devices check in, report and receive assignments.
	DeviceActive DeviceStatus = "active"
	// DeviceDecommissioned devices are retired (CCDS HLC07): their
	// certificate is revoked, they get no assignments and their reports are
	// refused. The record and its history are kept for the audit trail.
	DeviceDecommissioned DeviceStatus = "decommissioned"
)

// Validate reports whether s is a known status.
func (s DeviceStatus) Validate() error {
	if s != DeviceActive && s != DeviceDecommissioned {
		return Errorf(EINVALID, "Device status must be %q or %q.", DeviceActive, DeviceDecommissioned)
	}
	return nil
}

// Limits of device fields.
const (
	MaxPublicKeyLen  = 1024 // PKIX DER; P-256 is 91 bytes, Ed25519 44
	EncryptionKeyLen = 32   // X25519 public key
	MaxCertSerialLen = 40   // hex of an X.509 serial (≤ 20 bytes, RFC 5280)
	MinPollInterval  = 10 * time.Second
	MaxPollInterval  = 7 * 24 * time.Hour
)

// Device is one enrolled device of the fleet.
type Device struct {
	// ID is the hex SHA-256 of the device's PKIX public key (CCDS STS01): a
	// logical identity no one can claim without the private key. It never
	// changes; a device that rotates its key (factory reset) is a new device.
	ID string `json:"id"`
	// Serial is the physical identity printed on the device (CCDS STS02).
	// At most one active device has a given serial.
	Serial     string `json:"serial"`
	HardwareID string `json:"hardware_id"`
	// PublicKey is the PKIX (DER) key the device certificate was issued for.
	PublicKey []byte `json:"public_key"`
	// EncryptionKey is the device's X25519 public key to which the content
	// keys of encrypted releases are wrapped; empty if it has none.
	EncryptionKey []byte   `json:"encryption_key,omitempty"`
	Group         string   `json:"group,omitempty"`
	Tags          []string `json:"tags,omitempty"`
	// CertSerial and CertExpiresAt identify the current device certificate.
	CertSerial    string       `json:"cert_serial"`
	CertExpiresAt time.Time    `json:"cert_expires_at"`
	Status        DeviceStatus `json:"status"`
	// PollInterval overrides the server's default poll interval for this
	// device (CCDS UPD05); zero means the default.
	PollInterval time.Duration `json:"poll_interval,omitempty"`
	// Inventory is what the device reported last (CCDS SSS01, SSS06).
	Inventory        Inventory `json:"inventory"`
	EnrolledAt       time.Time `json:"enrolled_at"`
	LastSeenAt       time.Time `json:"last_seen_at,omitzero"`
	DecommissionedAt time.Time `json:"decommissioned_at,omitzero"`
}

// DeviceID returns the device ID for a PKIX-encoded public key (CCDS STS01).
func DeviceID(publicKey []byte) string {
	h := sha256.Sum256(publicKey)
	return hex.EncodeToString(h[:])
}

// Validate checks every field the operator or the device can set, and that
// the ID is the hash of the public key.
func (d *Device) Validate() error {
	if err := validatePublicKey(d.PublicKey); err != nil {
		return err
	}
	if d.ID != DeviceID(d.PublicKey) {
		return Errorf(EINVALID, "Device ID must be the SHA-256 of its public key.")
	}
	if err := ValidateID("Serial", d.Serial); err != nil {
		return err
	}
	if err := ValidateID("Hardware ID", d.HardwareID); err != nil {
		return err
	}
	if len(d.EncryptionKey) != 0 && len(d.EncryptionKey) != EncryptionKeyLen {
		return Errorf(EINVALID, "Encryption key must be a %d-byte X25519 public key.", EncryptionKeyLen)
	}
	if err := d.validateManaged(); err != nil {
		return err
	}
	if err := d.Status.Validate(); err != nil {
		return err
	}
	return d.Inventory.Validate()
}

// validateManaged checks the fields an operator can change after enrollment.
func (d *Device) validateManaged() error {
	if d.Group != "" {
		if err := ValidateID("Group", d.Group); err != nil {
			return err
		}
	}
	if err := validateTags(d.Tags); err != nil {
		return err
	}
	if len(d.CertSerial) > MaxCertSerialLen || !hexOrEmpty(d.CertSerial) {
		return Errorf(EINVALID, "Certificate serial must be at most %d hex digits.", MaxCertSerialLen)
	}
	return validatePollInterval(d.PollInterval)
}

// HasTag reports whether the device carries tag.
func (d *Device) HasTag(tag string) bool { return slices.Contains(d.Tags, tag) }

func validatePublicKey(k []byte) error {
	if len(k) == 0 || len(k) > MaxPublicKeyLen {
		return Errorf(EINVALID, "Public key must be 1-%d bytes of PKIX DER.", MaxPublicKeyLen)
	}
	return nil
}

func validatePollInterval(d time.Duration) error {
	if d != 0 && (d < MinPollInterval || d > MaxPollInterval) {
		return Errorf(EINVALID, "Poll interval must be between %s and %s.", MinPollInterval, MaxPollInterval)
	}
	return nil
}

func hexOrEmpty(s string) bool { return s == "" || hexPattern.MatchString(s) }

// CleanTags returns tags sorted and without duplicates, the form stores keep.
func CleanTags(tags []string) []string {
	out := slices.Clone(tags)
	slices.Sort(out)
	return slices.Compact(out)
}

// Sighting is one check-in of a device, for DeviceStore.TouchDevices.
type Sighting struct {
	DeviceID string
	At       time.Time
}

// MaxTouchBatch bounds one TouchDevices call.
const MaxTouchBatch = 10000

// DeviceUpdate holds the fields an operator may change; nil fields are left
// as they are.
type DeviceUpdate struct {
	Group         *string        `json:"group,omitempty"`
	Tags          *[]string      `json:"tags,omitempty"`
	PollInterval  *time.Duration `json:"poll_interval,omitempty"`
	CertSerial    *string        `json:"cert_serial,omitempty"`
	CertExpiresAt *time.Time     `json:"cert_expires_at,omitempty"`
}

// Apply copies the set fields onto d; validate d afterwards.
func (u *DeviceUpdate) Apply(d *Device) {
	if u.Group != nil {
		d.Group = *u.Group
	}
	if u.Tags != nil {
		d.Tags = CleanTags(*u.Tags)
	}
	if u.PollInterval != nil {
		d.PollInterval = *u.PollInterval
	}
	if u.CertSerial != nil {
		d.CertSerial = *u.CertSerial
	}
	if u.CertExpiresAt != nil {
		d.CertExpiresAt = *u.CertExpiresAt
	}
}

// DeviceStore keeps the device registry (CCDS STS03) and each device's
// reported inventory history (CCDS UPD09, SSS06).
type DeviceStore interface {
	// CreateDevice registers a device, for imports and store migration;
	// devices normally arrive through EnrollmentStore.EnrollDevice.
	// Returns EINVALID, or ECONFLICT if the ID exists or an active device
	// has the same serial.
	CreateDevice(ctx context.Context, d *Device) error

	// FindDeviceByID returns ENOTFOUND if no device has the ID.
	FindDeviceByID(ctx context.Context, id string) (*Device, error)

	// FindDeviceBySerial returns the active device with the serial, or else
	// the most recently enrolled one; ENOTFOUND if none has it.
	FindDeviceBySerial(ctx context.Context, serial string) (*Device, error)

	// FindDevices lists devices matching f in ID order (EINVALID on a bad
	// filter or limit).
	FindDevices(ctx context.Context, f DeviceFilter) ([]*Device, error)

	// CountDevices counts devices matching f, ignoring its cursor and limit.
	CountDevices(ctx context.Context, f DeviceFilter) (int, error)

	// UpdateDevice changes operator-managed fields and returns the device.
	// Returns ENOTFOUND, EINVALID.
	UpdateDevice(ctx context.Context, id string, upd DeviceUpdate) (*Device, error)

	// TouchDevice records that the device was seen at now; the check-in
	// hot path. Returns ENOTFOUND, or EFORBIDDEN if decommissioned.
	TouchDevice(ctx context.Context, id string, now time.Time) error

	// TouchDevices records many sightings in one transaction and returns
	// how many of them matched an active device; unknown and
	// decommissioned devices are skipped. Servers coalesce check-ins through it so that a
	// busy fleet costs one commit per flush, not one per check-in. Returns
	// EINVALID for a bad ID or more than MaxTouchBatch sightings.
	TouchDevices(ctx context.Context, seen []Sighting) (int, error)

	// RecordDeviceReport stores a device's report as its inventory and
	// marks it seen. The report is appended to the device's history only
	// when it differs from the previous one, so that frequent identical
	// check-ins do not grow the history. Returns whether it was appended;
	// ENOTFOUND, EINVALID, or EFORBIDDEN if decommissioned.
	RecordDeviceReport(ctx context.Context, id string, inv Inventory, now time.Time) (appended bool, err error)

	// FindDeviceReports pages through a device's report history.
	FindDeviceReports(ctx context.Context, id string, p SeqPage) ([]*DeviceReport, error)

	// FindFleetReports pages through every device's report history in
	// sequence order: the feed from which telemetry anomaly detection
	// learns which versions devices newly report (EN 303 645 5.10-1).
	// Under concurrent writers a report can become visible after one with
	// a higher sequence number, so a reader following the feed re-reads a
	// little behind its cursor. Returns EINVALID for a bad page.
	FindFleetReports(ctx context.Context, p SeqPage) ([]*DeviceReport, error)

	// DecommissionDevice retires a device and cancels its active assignment
	// in the same transaction. Decommissioning a decommissioned device
	// changes nothing. Returns ENOTFOUND.
	DecommissionDevice(ctx context.Context, id string, now time.Time) (*Device, error)
}
