package koshin

import "context"

// Limits of settings.
const (
	MaxSettingNameLen  = 128
	MaxSettingValueLen = 4096
)

// Names of the settings the server claims at start (cmd/koshin): the
// SHA-256 fingerprints of the certificate authorities and of the director's
// first root. Every replica sharing a database must present the same keys;
// one that was given another key directory refuses to start instead of
// issuing certificates and signing metadata no other replica's devices
// accept.
const (
	SettingServerCA     = "server-ca-sha256"
	SettingDeviceCA     = "device-ca-sha256"
	SettingDirectorRoot = "director-root-sha256"
)

// SettingStore keeps facts about the installation that every server
// replica must agree on. A setting is written once and never changed.
type SettingStore interface {
	// ClaimSetting stores value under name unless name has a value already,
	// and returns the stored value: value itself for the first claim, the
	// earlier value otherwise. Concurrent claims agree on one winner.
	// Returns EINVALID for an empty or overlong name or value.
	ClaimSetting(ctx context.Context, name, value string) (string, error)
}

// ValidateSetting checks a setting's name and value.
func ValidateSetting(name, value string) error {
	if name == "" || len(name) > MaxSettingNameLen || value == "" || len(value) > MaxSettingValueLen {
		return Errorf(EINVALID, "A setting needs a name of 1-%d bytes and a value of 1-%d bytes.", MaxSettingNameLen, MaxSettingValueLen)
	}
	return nil
}
