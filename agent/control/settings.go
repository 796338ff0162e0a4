package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"unicode"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
)

const settingsFile = "settings.json"

// maxNotifyTarget bounds the notification target (deviceapi allows more;
// a target is a name, an address or a short URL).
const maxNotifyTarget = 256

// DefaultSettings are the secure defaults (EN 303 645 5.3-6, CCDS STS06):
// updates on, installed automatically, the user notified.
func DefaultSettings() deviceapi.Settings {
	return deviceapi.Settings{UpdatesEnabled: true, Automatic: true, Notifications: true}
}

// ValidateSettings checks the notification target.
func ValidateSettings(s deviceapi.Settings) error {
	if len(s.NotifyTarget) > maxNotifyTarget {
		return fmt.Errorf("%w: notify_target longer than %d bytes", trust.ErrInvalid, maxNotifyTarget)
	}
	for _, r := range s.NotifyTarget {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("%w: notify_target has a control or invalid character", trust.ErrInvalid)
		}
	}
	return nil
}

// Settings holds the update settings, persisted atomically in the state
// directory so they survive restarts and power cuts, and read by the engine
// at every check-in (agent.Config.CurrentSettings) so the server sees them
// (CCDS UPE05–UPE07).
type Settings struct {
	fs agent.StateFS
	mu sync.Mutex
	s  deviceapi.Settings
}

// OpenSettings loads the settings. A device without a settings file has
// the defaults; a damaged file also gives the defaults, the secure choice,
// and an error saying so (the caller logs it and carries on).
func OpenSettings(fsys agent.StateFS) (*Settings, error) {
	st := &Settings{fs: fsys, s: DefaultSettings()}
	b, err := fsys.ReadFile(settingsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read settings: %w", err)
	}
	var s deviceapi.Settings
	if err := json.Unmarshal(b, &s); err != nil {
		return st, fmt.Errorf("settings file damaged, using the defaults: %w", err)
	}
	if err := ValidateSettings(s); err != nil {
		return st, fmt.Errorf("settings file damaged, using the defaults: %w", err)
	}
	st.s = s
	return st, nil
}

// Get returns the current settings.
func (st *Settings) Get() deviceapi.Settings {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.s
}

// Set validates, persists and then applies s; on error nothing changes.
func (st *Settings) Set(s deviceapi.Settings) error {
	if err := ValidateSettings(s); err != nil {
		return err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := st.fs.WriteFile(settingsFile, b); err != nil {
		return fmt.Errorf("write settings: %w", err)
	}
	st.s = s
	return nil
}

// Apply returns the settings with p's fields changed.
func (p SettingsPatch) Apply(s deviceapi.Settings) deviceapi.Settings {
	if p.UpdatesEnabled != nil {
		s.UpdatesEnabled = *p.UpdatesEnabled
	}
	if p.Automatic != nil {
		s.Automatic = *p.Automatic
	}
	if p.Notifications != nil {
		s.Notifications = *p.Notifications
	}
	if p.NotifyTarget != nil {
		s.NotifyTarget = *p.NotifyTarget
	}
	return s
}
