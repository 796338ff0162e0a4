package control

import (
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/deviceapi"
)

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
}

// Status is GET /v1/status.
type Status struct {
	DeviceID   string `json:"device_id"`
	HardwareID string `json:"hardware_id"`
	// Enrolled is false after a factory reset until the device enrolls
	// again with its new identity.
	Enrolled bool `json:"enrolled"`
	// Busy: an update step held the engine when the status was taken; the
	// engine fields are those of the last status taken.
	Busy      bool                       `json:"busy,omitempty"`
	Boot      BootStatus                 `json:"boot"`
	Update    *UpdateStatus              `json:"update,omitempty"`
	Installed map[string]agent.Installed `json:"installed"`
	Pending   *Pending                   `json:"pending,omitempty"`
	Settings  deviceapi.Settings         `json:"settings"`
	Security  deviceapi.Security         `json:"security"`
	// Alert lists the unauthorised changes the agent detected (EN 303 645
	// 5.7-2). While it is not empty Security.Restricted is set: the agent
	// talks only to the update server and refuses the state-changing
	// requests of this API except factory reset and clearing the alert.
	Alert []agent.Finding `json:"alert,omitempty"`
	// OfflineNonce is what an offline bundle's instruction must echo
	// (package agent/bundle).
	OfflineNonce string `json:"offline_nonce"`
	// Outbox counts reports waiting for the server.
	Outbox       int    `json:"outbox"`
	AgentVersion string `json:"agent_version,omitempty"`
}

// BootStatus is the bootloader's view.
type BootStatus struct {
	Booted  string `json:"booted"`
	Primary string `json:"primary"`
	Trial   bool   `json:"trial,omitempty"`
}

// UpdateStatus is the current or last update transaction.
type UpdateStatus struct {
	Target  string    `json:"target"`
	Version string    `json:"version"`
	State   string    `json:"state"`
	Reason  string    `json:"reason,omitempty"`
	Detail  string    `json:"detail,omitempty"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
}

// Pending is an update waiting for the user's decision. Security and
// Advisories tell the user which risks it mitigates (EN 303 645 5.3-11).
type Pending struct {
	Target     string         `json:"target"`
	Version    string         `json:"version"`
	SHA256     string         `json:"sha256"`
	Component  string         `json:"component"`
	Mode       deviceapi.Mode `json:"mode"`
	Security   bool           `json:"security,omitempty"`
	Advisories []string       `json:"advisories,omitempty"`
	FirstSeen  time.Time      `json:"first_seen"`
	// PostponedUntil is set while the user postponed it.
	PostponedUntil *time.Time `json:"postponed_until,omitempty"`
	// Approved: the user approved; it installs at the next check-in.
	Approved bool `json:"approved,omitempty"`
	// Blocked says why it cannot install now even if approved
	// ("updates-off").
	Blocked string `json:"blocked,omitempty"`
}

// Decision is the body of approve, postpone and decline. Target, if set,
// must name the pending update, so that a decision made on a stale screen
// does not apply to a newer offer.
type Decision struct {
	Target string `json:"target,omitempty"`
	// Until is the end of a postponement; For is the alternative as a Go
	// duration ("24h").
	Until *time.Time `json:"until,omitempty"`
	For   string     `json:"for,omitempty"`
}

// SettingsPatch changes the fields that are set.
type SettingsPatch struct {
	UpdatesEnabled *bool   `json:"updates_enabled,omitempty"`
	Automatic      *bool   `json:"automatic,omitempty"`
	Notifications  *bool   `json:"notifications,omitempty"`
	NotifyTarget   *string `json:"notify_target,omitempty"`
}

// ResetRequest must carry Confirm == ResetConfirmation: a factory reset
// erases user data and cannot be undone.
type ResetRequest struct {
	Confirm string `json:"confirm"`
}

// ResetConfirmation is the confirmation a reset request must carry.
const ResetConfirmation = "erase-user-data-and-keys"

// ResetResult is the confirmation of what a factory reset deleted
// (EN 303 645 5.11-4) and what it kept.
type ResetResult struct {
	Deleted []Deletion `json:"deleted"`
	Kept    []string   `json:"kept"`
	// DeviceID is the new identity; the device must enroll again.
	DeviceID    string    `json:"device_id"`
	EnrollAgain bool      `json:"enroll_again"`
	Completed   time.Time `json:"completed"`
}

// Deletion is one thing a reset deleted.
type Deletion struct {
	Path string `json:"path"`
	What string `json:"what"`
	// Files and Bytes count what a deleted directory tree held.
	Files int   `json:"files,omitempty"`
	Bytes int64 `json:"bytes,omitempty"`
}

// ClearAlertRequest is the body of POST /v1/alert/clear. Note says what
// the administrator found; it goes to the server with the alert-cleared
// report.
type ClearAlertRequest struct {
	Note string `json:"note,omitempty"`
}

// InstallRequest is the JSON form of POST /v1/install: the agent opens the
// bundle at Path itself. Only root may ask for it (root can read the file
// anyway); others send the bundle's bytes as the request body.
type InstallRequest struct {
	Path string `json:"path"`
}
