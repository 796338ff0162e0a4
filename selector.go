package koshin

import "slices"

// Limits of selector fields.
const (
	MaxSelectorGroups  = 100
	MaxSelectorTags    = 100
	MaxSelectorDevices = 10000
)

// Selector chooses the devices a rollout targets. Within a field any value
// matches (OR); across fields all set fields must match (AND). A selector
// with no field set must say All, so that an empty form never targets the
// whole fleet by accident. Only active devices whose hardware ID the release
// is signed for are ever eligible.
type Selector struct {
	All         bool     `json:"all,omitempty"`
	Groups      []string `json:"groups,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	HardwareIDs []string `json:"hardware_ids,omitempty"`
	DeviceIDs   []string `json:"device_ids,omitempty"`
}

// Validate checks sizes and forms.
func (s *Selector) Validate() error {
	empty := len(s.Groups)+len(s.Tags)+len(s.HardwareIDs)+len(s.DeviceIDs) == 0
	if empty != s.All {
		return Errorf(EINVALID, "A selector must either set all or name groups, tags, hardware IDs or devices.")
	}
	if err := validateIDs("group", s.Groups, MaxSelectorGroups); err != nil {
		return err
	}
	if len(s.Tags) > MaxSelectorTags {
		return Errorf(EINVALID, "At most %d tags are allowed.", MaxSelectorTags)
	}
	for _, t := range s.Tags {
		if err := ValidateTag(t); err != nil {
			return err
		}
	}
	if err := validateIDs("hardware ID", s.HardwareIDs, MaxHardwareIDs); err != nil {
		return err
	}
	if len(s.DeviceIDs) > MaxSelectorDevices {
		return Errorf(EINVALID, "At most %d devices can be named.", MaxSelectorDevices)
	}
	for _, id := range s.DeviceIDs {
		if err := validateHex("Device ID", id, 64); err != nil {
			return err
		}
	}
	return nil
}

// Matches reports whether d is selected (status and release fit aside).
func (s *Selector) Matches(d *Device) bool {
	if s.All {
		return true
	}
	return anyOrEmpty(s.Groups, d.Group) &&
		anyOrEmpty(s.HardwareIDs, d.HardwareID) &&
		anyOrEmpty(s.DeviceIDs, d.ID) &&
		(len(s.Tags) == 0 || slices.ContainsFunc(s.Tags, d.HasTag))
}

func anyOrEmpty(set []string, v string) bool { return len(set) == 0 || slices.Contains(set, v) }

// Targets reports whether a rollout of release r with selector s is aimed
// at d: active, selected and fitting the release's hardware.
func (s *Selector) Targets(d *Device, r *Release) bool {
	return d.Status == DeviceActive && r.Fits(d.HardwareID) && s.Matches(d)
}

// Eligible reports whether d takes part in a rollout of r with selector s:
// targeted, and with updates switched on in its agent (CCDS UPE05). A device
// that switched updates off would never start, go silent and count as a
// failure against a rollout it was never going to join. A device that has
// not reported its settings yet is not eligible either: agents report at
// their first check-in, before any rollout can reach them.
func (s *Selector) Eligible(d *Device, r *Release) bool {
	return s.Targets(d, r) && d.Inventory.Settings.UpdatesEnabled
}
