// Package agent is the device side of koshin: the update engine and the
// reporting engine of the CCDS model (UPE01, UPE11, UPE13, UPE14). It holds the
// engine's domain — the transaction state machine, its journal, and the
// interfaces to everything the engine drives (Bootloader, SlotSet, Installer,
// Server, Verifier, Fetcher, HealthCheck, Counter) — and the Engine that runs
// one update transaction at a time through them.
//
// # States
//
//	idle → checking → downloading → verifying → installing → awaiting-reboot
//	     → trial-boot → health-check → committed | rolled-back
//
// plus failed (download or verification failed; nothing was switched).
// In-place payloads (archives, update modules) skip the two reboot states.
// Every transition from downloading on is written to the journal (one small
// JSON file, replaced atomically) before the engine acts on it; "checking"
// is not, because it holds nothing to resume and writing flash on every poll
// would wear it out for no benefit.
//
// # Invariants the power-cut tests prove (EN 303 645 5.9-1/5.9-2, MIC 技適)
//
//   - Nothing unverified becomes bootable: the bootloader is switched
//     (Bootloader.SetTrial) only right after the inactive slot has been read
//     back and its bytes hashed to the signed digest, in the same run.
//   - The persisted anti-rollback counter advances only after the bootloader
//     has made the new slot permanent, which happens only after the health
//     check passed on the new image; so "counter advanced, old slot booted"
//     cannot happen (UPE03).
//   - The journal records the bootloader's intended state one step behind
//     the bootloader itself, so at start-up the pair (journal, bootloader
//     state) tells which side of each switch a power cut fell on; Engine.Start
//     resolves every pair to "resume", "finish the commit" or "roll back".
//   - Reports are queued in the journal in the same atomic write as the
//     transition they describe, so they survive restarts; event IDs are
//     derived from the transaction so a re-sent report is not counted twice.
//
// # Unauthorised changes (EN 303 645 5.7-2)
//
// The engine treats as an unauthorised change of the device's software:
//
//   - the secure/measured-boot hook (Config.BootIntegrity) reporting
//     "failed";
//   - the booted slot not holding what the agent committed there — its
//     bytes differ from the signed length and SHA-256 recorded at commit
//     (CheckSlot, IntegrityConfig.SlotCheck), or, with no update in flight,
//     the device runs a slot other than the one last committed;
//   - the anti-rollback counter failing its integrity check
//     (ErrCorruptCounter), or the trust core's metadata directory failing
//     IntegrityConfig.Trusted;
//   - its own integrity record (integrity.json) failing its check.
//
// Start and every Poll run the cheap checks; Run hashes the booted slot
// alongside the polls, at start-up and optionally on a schedule, at a
// bounded rate. On a finding the engine alerts and restricts itself: a
// tamper-detected report with the reason is queued for the server, every
// check-in report carries Security.Restricted, the local status lists the
// findings (Alert), and IntegrityConfig.OnAlert tells the device's user.
// Restricted, the engine keeps only its connection to the update server —
// check-ins, reports, and downloads of verified updates, which install
// without waiting for the user's decisions (those are refused locally);
// it refuses offline installs (ErrRestricted), and the local control API
// refuses its other state-changing requests.
//
// The alert is persisted and survives restarts. It ends when a verified
// A/B update is committed, which re-establishes a known-good image, or
// when an administrator clears it (ClearAlert); either is reported as
// alert-cleared. A cause that persists is detected again. A factory reset
// keeps the alert (it keeps the software) and reports it again under the
// new identity.
//
// # Concurrency
//
// One transaction at a time (CCDS UPE10): every state-changing operation,
// including those of the local control API that a later layer adds (factory
// reset, settings, offline install), runs inside Engine.Exclusive, which
// waits for the running one. A lock file keeps a second agent process off
// the same state directory.
package agent
