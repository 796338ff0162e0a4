package trust

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// DirectorCustom is the signed "custom" object of a director target: the
// must-match fields Uptane requires the director to repeat, and for encrypted
// releases the content key wrapped to this device (package encryption).
type DirectorCustom struct {
	HardwareID     string  `json:"hardware_id"`
	Component      string  `json:"component"`
	ReleaseCounter uint64  `json:"release_counter"`
	Channel        Channel `json:"channel"`
	WrappedKey     []byte  `json:"wrapped_key,omitempty"`
}

// MaxWrappedKeyLen bounds the HPKE-wrapped content key.
const MaxWrappedKeyLen = 512

// Validate checks form and sizes.
func (c *DirectorCustom) Validate() error {
	if err := ValidateID("hardware ID", c.HardwareID); err != nil {
		return err
	}
	if err := ValidateID("component", c.Component); err != nil {
		return err
	}
	if c.ReleaseCounter == 0 || c.ReleaseCounter > MaxReleaseCounter {
		return fmt.Errorf("%w: director release_counter out of range", ErrInvalid)
	}
	if len(c.WrappedKey) > MaxWrappedKeyLen {
		return fmt.Errorf("%w: wrapped key longer than %d bytes", ErrInvalid, MaxWrappedKeyLen)
	}
	return c.Channel.Validate()
}

// ParseDirectorCustom decodes and validates a director target's custom object.
func ParseDirectorCustom(raw *json.RawMessage) (*DirectorCustom, error) {
	if raw == nil {
		return nil, fmt.Errorf("%w: director target has no custom fields", ErrInvalid)
	}
	var c DirectorCustom
	if err := json.Unmarshal(*raw, &c); err != nil {
		return nil, fmt.Errorf("%w: director custom: %v", ErrInvalid, err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Raw encodes c for metadata.TargetFiles.Custom.
func (c *DirectorCustom) Raw() *json.RawMessage {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // plain struct: cannot fail
	}
	raw := json.RawMessage(b)
	return &raw
}

// Device describes the verifying device: what it is, what it runs and which
// channel it was provisioned for.
type Device struct {
	ID         string
	HardwareID string
	Channel    Channel
	// Installed maps component → release counter currently committed.
	Installed map[string]uint64
}

// Agree is the Uptane director↔image agreement check for one target name.
// Both sides must already be signature-verified. It returns the image
// repository's custom fields on success.
func Agree(dev Device, dir *metadata.TargetFiles, dc *DirectorCustom, img *metadata.TargetFiles, floors map[string]uint64) (*TargetCustom, error) {
	if img == nil {
		return nil, fmt.Errorf("%w: director names %q, image repository does not hold it", ErrNotFound, dir.Path)
	}
	ic, err := ParseTargetCustom(img.Custom)
	if err != nil {
		return nil, err
	}
	if err := agreeFile(dir, img); err != nil {
		return nil, err
	}
	if err := agreeCustom(dev, dc, ic); err != nil {
		return nil, err
	}
	if err := checkCounter(dev, ic, floors); err != nil {
		return nil, err
	}
	return ic, nil
}

func agreeFile(dir, img *metadata.TargetFiles) error {
	if dir.Length != img.Length {
		return fmt.Errorf("%w: %q length: director %d, image %d", ErrMismatch, dir.Path, dir.Length, img.Length)
	}
	sha, ok := img.Hashes["sha256"]
	if !ok {
		return fmt.Errorf("%w: image target %q has no sha256", ErrInvalid, img.Path)
	}
	if !bytes.Equal(dir.Hashes["sha256"], sha) {
		return fmt.Errorf("%w: %q sha256 differs between director and image repository", ErrMismatch, dir.Path)
	}
	for alg, h := range dir.Hashes {
		if other, ok := img.Hashes[alg]; ok && !bytes.Equal(h, other) {
			return fmt.Errorf("%w: %q %s differs between director and image repository", ErrMismatch, dir.Path, alg)
		}
	}
	return nil
}

func agreeCustom(dev Device, dc *DirectorCustom, ic *TargetCustom) error {
	if ic.Channel != dev.Channel || dc.Channel != dev.Channel {
		return fmt.Errorf("%w: target channel %q (director %q), device accepts %q", ErrWrongChannel, ic.Channel, dc.Channel, dev.Channel)
	}
	if dc.HardwareID != dev.HardwareID || !ic.FitsHardware(dev.HardwareID) {
		return fmt.Errorf("%w: device is %q; director says %q, image repository %v", ErrWrongHardware, dev.HardwareID, dc.HardwareID, ic.HardwareIDs)
	}
	if dc.Component != ic.Component {
		return fmt.Errorf("%w: component: director %q, image %q", ErrMismatch, dc.Component, ic.Component)
	}
	if dc.ReleaseCounter != ic.ReleaseCounter {
		return fmt.Errorf("%w: release counter: director %d, image %d", ErrMismatch, dc.ReleaseCounter, ic.ReleaseCounter)
	}
	return nil
}

// checkCounter enforces anti-rollback: the new release counter must be at
// least the installed one (equal means reinstall, e.g. after a failed trial)
// and at least the signed floor for this hardware and component
// (revocation).
func checkCounter(dev Device, ic *TargetCustom, floors map[string]uint64) error {
	if floor := floors[FloorKey(dev.HardwareID, ic.Component)]; ic.ReleaseCounter < floor {
		return fmt.Errorf("%w: release counter %d is below the signed floor %d for %s on %s", ErrRevoked, ic.ReleaseCounter, floor, ic.Component, dev.HardwareID)
	}
	if cur := dev.Installed[ic.Component]; ic.ReleaseCounter < cur {
		return fmt.Errorf("%w: release counter %d is below installed %d for %s", ErrRollback, ic.ReleaseCounter, cur, ic.Component)
	}
	return nil
}
