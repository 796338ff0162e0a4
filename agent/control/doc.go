// Package control is the agent's local control API: what the device's
// user, a local UI or the administrator's tooling on the device use to see
// the update state and to decide about updates, without any inbound
// network port (EN 303 645 5.6-1, CCDS STS11).
//
// # Transport and authentication
//
// HTTP/1.1 over a Unix socket only (Listen), mode 0660, optionally owned
// by a configured group. Every request must pass three checks (CCDS STS12,
// EN 303 645 5.5-4/5.5-5):
//
//  1. file permissions on the socket decide who can connect at all;
//  2. the peer's credentials, read from the kernel (SO_PEERCRED), must be
//     root or a configured UID or primary GID;
//  3. the request carries the bearer token stored in a 0600 file that the
//     agent generates at first start from 256 random bits (no default
//     credential exists, EN 303 645 5.1-1/5.1-2).
//
// Repeated failures lock the failing UID out with a doubling delay (CCDS
// STS13); each lockout is counted, reported to the server as an event and
// in the security state of every check-in. A lockout of one UID does not
// lock out another, so a local user cannot lock out root.
//
// # Endpoints
//
//	GET   /v1/status              Status
//	POST  /v1/update/approve      Decision → Pending
//	POST  /v1/update/postpone     Decision (with Until) → Pending
//	POST  /v1/update/decline      Decision → Pending
//	GET   /v1/settings            deviceapi.Settings
//	PATCH /v1/settings            SettingsPatch → deviceapi.Settings
//	POST  /v1/settings/defaults   → deviceapi.Settings (restore secure defaults)
//	POST  /v1/reset               ResetRequest → ResetResult (factory reset)
//	POST  /v1/install             bundle bytes, or InstallRequest{path} from root → bundle.Result
//	POST  /v1/alert/clear         ClearAlertRequest (root only) → Status
//
// Errors are JSON ErrorBody with a status code: 400 malformed request, 401
// bad token, 403 peer not allowed, 409 not possible in the current state,
// 422 update refused by verification, 429 locked out (Retry-After).
//
// # Update decisions
//
// Consent plugs into agent.Config.Approve. It installs automatically when
// the server's rollout is automatic and the device is in automatic mode
// (the default, EN 303 645 5.3-6); otherwise the update becomes pending
// until the user approves it (it installs at the next check-in), postpones
// it (it installs at the first check-in after the chosen time, at most
// MaxPostpone ahead) or declines it (reported to the server; it is not
// installed).
// A forced rollout overrides decline, postpone and manual mode (CCDS
// UPD11). Switching updates off (CCDS UPE05) stops every install,
// forced ones included; the device reports the setting and the server's
// rollouts leave it out.
//
// # Restricted after an unauthorised change
//
// When the engine detects an unauthorised change (EN 303 645 5.7-2, see
// package agent) the status lists it under Alert with
// Security.Restricted set, the notify command is run with
// KOSHIN_EVENT=tamper-detected, and the API refuses (409) every request
// that changes the device's software or how it updates: approve,
// postpone, decline, settings changes and offline installs. Meanwhile the
// engine installs verified updates from the server without waiting for
// the user, so the administrator can repair the device.
//
// Two requests stay. Factory reset, because the user must always be able
// to erase their data (EN 303 645 5.11-1), all the more on a device that
// may be compromised; it keeps the software, so it neither repairs nor
// hides the change: the alert stays, and is reported again under the new
// identity. And POST /v1/alert/clear, root only, for the administrator
// who examined the device; the clearing is reported to the server with
// the caller's UID and note. A committed update clears the alert too.
package control
