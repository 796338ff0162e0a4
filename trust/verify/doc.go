// Package verify is the device side of koshin's trust core: it decides, from
// signed metadata alone, whether a payload may be installed.
//
// A device holds two trusted roots, written once at provisioning
// (Provision): the manufacturer's image repository root and the fleet's
// director root. Before every update the Verifier
//
//  1. refreshes the image repository with the TUF client workflow
//     (RefreshImage): walks N+1.root.json, then timestamp, snapshot and
//     targets, persisting each accepted file atomically so that a power cut
//     leaves the previous trusted state;
//  2. verifies the per-device director targets document received with the
//     check-in (CheckDirector): signed by the director root's targets role,
//     fresh, bound to this device and to the nonce it just sent;
//  3. requires the two repositories to agree on every named target (length,
//     hashes, hardware, channel, component, release counter) and the release
//     counter to be at least the installed one and the signed floor
//     (trust.Agree).
//
// The result is a Plan. Payloads are then streamed through a PayloadReader,
// which hashes as bytes flow, stops at the signed length and enforces a
// minimum throughput. Nothing a director did not name is installable
// (Verifier.Lookup).
//
// Network access goes through the Fetcher interface only; HTTPFetcher is the
// production implementation with its own timeouts and throughput floor.
// Time is always a parameter (Config.Now), never read by verification code.
//
// ImageClient is the image-repository path alone, usable against generic
// TUF repositories; the conformance client in cmd/koshin-tuf-client uses it.
//
// Every verification failure wraps exactly one of the trust package's
// sentinel errors (trust.ErrExpired, trust.ErrRollback, ...) and, where one
// exists, go-tuf's original error.
package verify
