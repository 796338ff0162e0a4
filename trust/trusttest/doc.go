// Package trusttest simulates koshin's repositories in memory for tests, in
// the style of go-tuf's internal repository simulator.
//
// A Repo holds working copies of root, targets, snapshot and timestamp
// metadata that a test edits directly, and a set of published files that
// are all a client ever sees. Publish* methods sign the working copies and
// publish them under the consistent-snapshot layout (metadata/N.root.json,
// metadata/timestamp.json, metadata/N.snapshot.json, metadata/N.targets.json,
// targets/HASH.NAME). Malicious states are published the same way (expired,
// rolled back, under-signed metadata) or by replacing files outright
// (SetFile). A Repo serves its files through the verify.Fetcher interface
// (Fetch, Open) and over HTTP (ServeHTTP, Serve), with HTTP Range.
//
// The same type plays the director: its root chain is published like any
// root, and DirectorTargets/Instruct sign per-device instructions bound to
// a device ID and nonce.
//
// Keys are generated per Repo and held in memory; nothing here is fit for
// production signing (see package repo).
package trusttest
