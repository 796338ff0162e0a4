package koshin

import (
	"strings"
	"time"
)

// DeviceFilter selects devices. Zero fields match everything; set fields are
// combined with AND. Lists come back in device-ID order, starting after the
// cursor After.
type DeviceFilter struct {
	IDPrefix     string       `json:"id_prefix,omitempty"`
	SerialPrefix string       `json:"serial_prefix,omitempty"`
	HardwareID   string       `json:"hardware_id,omitempty"`
	Group        string       `json:"group,omitempty"`
	Tags         []string     `json:"tags,omitempty"` // the device carries all of them
	Status       DeviceStatus `json:"status,omitempty"`
	// SeenBefore selects devices not seen since this instant (or never):
	// the silent part of the fleet.
	SeenBefore time.Time `json:"seen_before,omitzero"`
	After      string    `json:"after,omitempty"`
	Limit      int       `json:"limit,omitempty"`
}

// maxFilterTags bounds the tag terms of one filter (each costs a subquery).
const maxFilterTags = 8

// Validate checks every set field.
func (f *DeviceFilter) Validate() error {
	if f.IDPrefix != "" && (len(f.IDPrefix) > 64 || !hexPattern.MatchString(f.IDPrefix)) {
		return Errorf(EINVALID, "Device ID prefix must be up to 64 lowercase hex digits.")
	}
	if f.After != "" && (len(f.After) > 64 || !hexPattern.MatchString(f.After)) {
		return Errorf(EINVALID, "Cursor must be a device ID.")
	}
	if err := validateOptionalIDs(
		"Serial prefix", f.SerialPrefix, "Hardware ID", f.HardwareID, "Group", f.Group,
	); err != nil {
		return err
	}
	if len(f.Tags) > maxFilterTags {
		return Errorf(EINVALID, "At most %d tags can be filtered on.", maxFilterTags)
	}
	if err := validateTags(f.Tags); err != nil {
		return err
	}
	if f.Status != "" {
		if err := f.Status.Validate(); err != nil {
			return err
		}
	}
	_, err := Limit(f.Limit)
	return err
}

// validateOptionalIDs checks (name, value) pairs, skipping empty values.
func validateOptionalIDs(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			continue
		}
		if err := ValidateID(pairs[i], pairs[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// Query syntax limits.
const (
	MaxQueryLen   = 512
	maxQueryTerms = 16
)

// ParseDeviceQuery parses the search-box syntax of the UI and CLI into a
// filter. A query is a space-separated list of terms: key:value with keys
// id (ID prefix), serial (serial prefix), hw, group, tag (repeatable),
// status, and seen-before (RFC 3339 time); a bare word is a serial prefix.
// Example: "group:plant-7 tag:region=eu status:active serial:SN-2026".
// Unknown keys, repeated keys other than tag, and invalid values are
// EINVALID so that a typo never silently widens a selection.
func ParseDeviceQuery(q string) (DeviceFilter, error) {
	var f DeviceFilter
	if len(q) > MaxQueryLen {
		return f, Errorf(EINVALID, "Query must be at most %d bytes.", MaxQueryLen)
	}
	terms := strings.Fields(q)
	if len(terms) > maxQueryTerms {
		return f, Errorf(EINVALID, "Query must have at most %d terms.", maxQueryTerms)
	}
	seen := map[string]bool{}
	for _, term := range terms {
		key, value, ok := strings.Cut(term, ":")
		if !ok {
			key, value = "serial", term
		}
		if seen[key] && key != "tag" {
			return f, Errorf(EINVALID, "Query term %q appears twice.", key)
		}
		seen[key] = true
		if err := f.setQueryTerm(key, value); err != nil {
			return f, err
		}
	}
	return f, f.Validate()
}

func (f *DeviceFilter) setQueryTerm(key, value string) error {
	if value == "" {
		return Errorf(EINVALID, "Query term %q has no value.", key)
	}
	switch key {
	case "id":
		f.IDPrefix = value
	case "serial":
		f.SerialPrefix = value
	case "hw":
		f.HardwareID = value
	case "group":
		f.Group = value
	case "tag":
		f.Tags = append(f.Tags, value)
	case "status":
		f.Status = DeviceStatus(value)
	case "seen-before":
		t, err := time.Parse(time.RFC3339, value)
		if err != nil {
			return Errorf(EINVALID, "seen-before must be an RFC 3339 time.")
		}
		f.SeenBefore = t
	default:
		return Errorf(EINVALID, "Unknown query term %q.", key)
	}
	return nil
}

// Query renders the filter's selection (not its cursor or limit) in the
// syntax ParseDeviceQuery reads.
func (f *DeviceFilter) Query() string {
	var terms []string
	add := func(key, v string) {
		if v != "" {
			terms = append(terms, key+":"+v)
		}
	}
	add("id", f.IDPrefix)
	add("serial", f.SerialPrefix)
	add("hw", f.HardwareID)
	add("group", f.Group)
	for _, t := range f.Tags {
		add("tag", t)
	}
	add("status", string(f.Status))
	if !f.SeenBefore.IsZero() {
		add("seen-before", f.SeenBefore.Format(time.RFC3339Nano))
	}
	return strings.Join(terms, " ")
}
