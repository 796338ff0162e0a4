// Package trust holds koshin's update trust core: the shared vocabulary of the
// image and director repositories, in the Uptane topology on TUF 1.0 metadata.
//
// Who signs what:
//
//   - The manufacturer's image repository (subpackage repo) publishes root,
//     targets, snapshot and timestamp metadata. Root and targets keys are held
//     offline or on PKCS#11 tokens and need a threshold of signatures; snapshot
//     and timestamp keys are online and short-lived. Every target carries the
//     signed custom fields in TargetCustom, and the targets role carries a
//     per-hardware release-counter floor.
//   - The fleet's director repository (repo.Director) signs, online and per
//     device, a targets document naming what that device installs next. It
//     echoes the device's nonce and may carry a content key wrapped to that
//     device (subpackage encryption).
//   - The device (subpackage verify) installs a payload only when both
//     repositories agree on it (Agreement), streaming and hashing it while
//     capped at the signed length.
//
// Which keys: keys live behind crypto.Signer (subpackage keys): encrypted files
// by default (Ed25519 or ECDSA P-256), PKCS#11 tokens under the pkcs11 build
// tag. A dev repository and a release repository have separate roots, and the
// channel signed into every target keeps them apart.
//
// Which files: the consistent-snapshot layout of TUF: N.root.json (every
// version kept), N.targets.json, N.snapshot.json, timestamp.json, and
// targets/HASH.NAME for payloads.
//
// Verification failures are returned as errors that match the sentinel errors
// of this package with errors.Is.
package trust
