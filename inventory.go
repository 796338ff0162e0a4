package koshin

import (
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"slices"
	"time"
)

// Inventory is a device's self-reported state: installed software, slots,
// agent settings and security state (CCDS SSS01, SSS06, UPE05–UPE07). It
// mirrors the device API's signed report; the server keeps it verbatim
// because only the device may change it (CCDS SSS04).
type Inventory struct {
	Components   []Component     `json:"components"`
	Slot         SlotState       `json:"slot"`
	Settings     AgentSettings   `json:"settings"`
	Security     SecurityState   `json:"security"`
	Update       *UpdateProgress `json:"update,omitempty"`
	AgentVersion string          `json:"agent_version,omitempty"`
}

// Component is one installed software component.
type Component struct {
	Name           string `json:"name"`
	Version        string `json:"version"`
	ReleaseCounter uint64 `json:"release_counter"`
	Target         string `json:"target,omitempty"`
}

// SlotState describes the device's A/B slots.
type SlotState struct {
	Active  string `json:"active,omitempty"`
	Trial   bool   `json:"trial,omitempty"`
	Healthy bool   `json:"healthy"`
}

// AgentSettings are the device's update settings: updates on or off (CCDS
// UPE05), automatic or manual start (UPE06), notifications and where they
// go (UPE07).
type AgentSettings struct {
	UpdatesEnabled bool   `json:"updates_enabled"`
	Automatic      bool   `json:"automatic"`
	Notifications  bool   `json:"notifications"`
	NotifyTarget   string `json:"notify_target,omitempty"`
}

// BootIntegrity is the result of the device's secure or measured boot hook.
type BootIntegrity string

const (
	BootUnknown    BootIntegrity = ""           // never reported
	BootVerified   BootIntegrity = "verified"   // the hook vouched for the boot chain
	BootUnverified BootIntegrity = "unverified" // the device has no hook
	BootFailed     BootIntegrity = "failed"     // the hook found a problem (CCDS SSS02)
)

// SecurityState is the device's security report (CCDS SSS01, SSS02).
type SecurityState struct {
	BootIntegrity BootIntegrity `json:"boot_integrity,omitempty"`
	// FailedVerifications counts update verifications that failed since the
	// previous report (EN 303 645 5.3-9, 5.10-1).
	FailedVerifications uint32 `json:"failed_verifications"`
	// Lockouts counts local-API lockouts since the previous report.
	Lockouts uint32 `json:"lockouts"`
	// Restricted: the agent detected an unauthorised change and talks only
	// to the update server (EN 303 645 5.7-2).
	Restricted bool `json:"restricted,omitempty"`
}

// UpdateProgress is the agent's in-flight update transaction, if any.
type UpdateProgress struct {
	Target string `json:"target"`
	State  string `json:"state"`
}

// DeviceReport is one entry of a device's append-only inventory history.
type DeviceReport struct {
	Seq        int64     `json:"seq"`
	DeviceID   string    `json:"device_id"`
	ReceivedAt time.Time `json:"received_at"`
	Inventory  Inventory `json:"inventory"`
}

// Validate checks sizes and forms.
func (inv *Inventory) Validate() error {
	if len(inv.Components) > MaxComponents {
		return Errorf(EINVALID, "At most %d components are allowed.", MaxComponents)
	}
	for i := range inv.Components {
		if err := inv.Components[i].Validate(); err != nil {
			return err
		}
	}
	if err := validateText("Slot name", inv.Slot.Active, MaxShortLen); err != nil {
		return err
	}
	if err := validateText("Notification target", inv.Settings.NotifyTarget, MaxTextLen); err != nil {
		return err
	}
	if err := inv.Security.BootIntegrity.Validate(); err != nil {
		return err
	}
	if err := validateText("Agent version", inv.AgentVersion, MaxShortLen); err != nil {
		return err
	}
	if inv.Update != nil {
		return inv.Update.Validate()
	}
	return nil
}

// Validate checks a component's name, version, target and counter.
func (c *Component) Validate() error {
	if err := ValidateID("Component name", c.Name); err != nil {
		return err
	}
	if len(c.Version) > MaxShortLen || len(c.Target) > MaxNameLen {
		return Errorf(EINVALID, "Component %s: version or target too long.", c.Name)
	}
	if c.ReleaseCounter > MaxReleaseCounter {
		return Errorf(EINVALID, "Component %s: release counter out of range.", c.Name)
	}
	return nil
}

// Validate reports whether b is a known result.
func (b BootIntegrity) Validate() error {
	switch b {
	case BootUnknown, BootVerified, BootUnverified, BootFailed:
		return nil
	}
	return Errorf(EINVALID, "Boot integrity must be verified, unverified or failed.")
}

// Validate checks sizes.
func (u *UpdateProgress) Validate() error {
	if len(u.Target) > MaxNameLen || len(u.State) > MaxShortLen {
		return Errorf(EINVALID, "Update progress field too long.")
	}
	return nil
}

// Component returns the installed component called name.
func (inv *Inventory) Component(name string) (Component, bool) {
	i := slices.IndexFunc(inv.Components, func(c Component) bool { return c.Name == name })
	if i < 0 {
		return Component{}, false
	}
	return inv.Components[i], true
}

// Normalize sorts components by name so that equal states encode equally.
func (inv *Inventory) Normalize() {
	slices.SortFunc(inv.Components, func(a, b Component) int { return cmp.Compare(a.Name, b.Name) })
}

// Digest is a hash of the normalized inventory's encoding. Stores compare it
// with the previous report's to append history only on change.
func (inv Inventory) Digest() []byte {
	inv.Components = slices.Clone(inv.Components)
	inv.Normalize()
	b, err := json.Marshal(inv)
	if err != nil {
		panic(err) // plain structs: cannot fail
	}
	h := sha256.Sum256(b)
	return h[:]
}
