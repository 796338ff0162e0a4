// Package repo is the signing side of koshin's trust core: the image
// repository workspace a release manager signs releases in, and the
// director that signs per-device instructions on the server.
//
// # Image repository
//
// A Repo is a directory (see docs/trust.md for the runbooks):
//
//	repo.json          channel, expiry policy, where each private key lives
//	staged/            root.json and targets.json being prepared, with the
//	                   signatures collected so far
//	signed/            every N.root.json, the current N.targets.json,
//	                   N.snapshot.json, N.timestamp.json, and current.json,
//	                   the single commit point naming them
//	payloads/SHA256    content-addressed copies of every payload
//
// Root and targets are offline roles: edits (AddKey, RemoveKey,
// SetThreshold, RotateRoot, AddTarget, Revoke) stage the next version,
// people sign it (Sign with a key file or PKCS#11 token, or ExportUnsigned →
// SignOffline on an air-gapped machine → ImportSignature) until its
// threshold of distinct keys is met, and Commit promotes it, signing a new
// snapshot and timestamp with the online keys. Timestamp renews those two
// on a schedule; Publish writes the consistent-snapshot layout for a web
// server, CDN or mirror.
//
// Every write is atomic (internal/atomicfile) and every multi-file change
// ends with one atomic replace, so a crash leaves the previous consistent
// state. The workspace is locked while a Repo is open.
//
// # Director
//
// A Director holds its own root chain (roles root and targets only: a nonce
// echoed in each document replaces snapshot and timestamp) and an online
// targets key, and signs a targets document per device and check-in
// (SignTargets) without any I/O.
//
// Errors match the sentinels of package trust (ErrInvalid, ErrWrongChannel,
// ErrRollback, ErrThreshold, ErrExpired, ErrMismatch) and of this package.
package repo
