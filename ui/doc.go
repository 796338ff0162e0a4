// Package ui is koshin's web UI: server-rendered pages for operators,
// served by `koshin server` on the management listener under /ui/.
//
// Pages are html/template (every value escaped by context, so device
// names, tags and reasons reported by devices cannot inject markup), the
// CSS and the vendored htmx.min.js are embedded with go:embed, and live
// views (rollout progress, fleet counts) are pushed as server-sent events
// carrying re-rendered HTML fragments. Read-only views work without
// JavaScript; scripts only refresh them in place.
//
// The UI holds no authority of its own. Signing in posts the operator's
// name, password and one-time code to the management API's session
// endpoint in-process, so the API's rate limits, lockout with growing
// delay and TOTP check apply unchanged (EN 303 645 5.1-5, CCDS STS13,
// ORG08). The session token it returns lives only in an HttpOnly, Secure,
// SameSite=Strict cookie. Every action a form triggers is likewise an
// in-process call to the management API with that token, so the API's
// route table decides who may do what (CCDS STS05, EN 303 645 5.5-5) and
// its audit log records the principal (CCDS STS14). The UI consults the
// same table only to leave out buttons a role could not use. Every form
// carries a CSRF token derived from the session secret and is refused
// without it.
//
// Views read the store directly: the fleet overview (CCDS STS03, SSS06),
// devices with inventory, security state and history (SSS01–SSS03, UPD09),
// releases with advisories and support end (EN 303 645 5.3-13, OTA 39),
// rollouts with live phase progress, halt reasons and approvals (UPD10,
// UPE08), the audit log with its chain verification, and the compliance
// report for the configured product profile.
package ui
