// Package bundle reads and writes offline update bundles: one file that
// carries everything a device needs to verify and install an update
// without reaching the update server — from a USB stick, or copied by the
// administrator's local tooling in the CCDS industrial flow.
//
// A bundle adds no trust path. The device verifies its content exactly as
// it verifies what the server sends (agent.Engine.InstallOffline with the
// trust core's verifier reading from the bundle): the image repository's
// metadata must chain to the device's trusted image root and be current,
// the director instruction must be signed by the director's targets key
// for this device's ID and echo this device's offline nonce, the two must
// agree, and the payload must match its signed length and hashes before
// anything is switched. A bundle anyone could have written is therefore
// harmless; only a bundle the director signed for this device, this time,
// installs.
//
// # Format
//
// A bundle is a POSIX tar file (ustar or pax, uncompressed: payloads are
// compressed themselves and must be readable at an offset), holding only
// regular files and directories:
//
//	koshin-bundle.json              manifest, the first entry: {"format": 1, ...}
//	image/N.root.json               image repository root chain (all versions
//	                                the device may lack; at least the current)
//	image/timestamp.json            image repository timestamp, snapshot and
//	image/N.snapshot.json           targets, named as the repository publishes
//	image/N.targets.json            them (consistent snapshots)
//	director/N.root.json            director root chain (optional: only
//	                                versions newer than the device's)
//	director/targets.json           the instruction, for a one-device bundle
//	director/devices/ID.json        instructions per device ID, for a fleet bundle
//	targets/HASH.NAME               payloads, named as the repository serves them
//
// The tree below image/ and targets/ is a copy of the image repository's
// published directory; director/ holds what the director signs. Any tar
// tool can write one (list koshin-bundle.json first). Names must be clean
// relative paths, unique, and there are at most MaxEntries entries.
//
// # Freshness: the offline nonce
//
// Online, the device sends a fresh nonce with every check-in and accepts
// only a director instruction that echoes it. Offline there is no
// check-in, so the device keeps an offline nonce (Nonces): a random value
// it shows in `koshin-agent status`, stored atomically, and replaces as
// soon as an instruction echoing it has been accepted. The administrator
// gives the device ID and this nonce to the director, which signs an
// instruction bound to both (`koshin bundle create` does it and writes the
// bundle); a fleet bundle carries one such instruction per device. A
// copied or old bundle is refused (trust.ErrWrongDevice,
// trust.ErrStaleNonce), and the director's version counter refuses an
// instruction older than one already accepted (trust.ErrRollback).
//
// The image repository's timestamp expires (one day by default), so a
// bundle must be used before its timestamp expires by the device's clock;
// sites that carry bundles for longer publish with a longer timestamp
// expiry.
package bundle
