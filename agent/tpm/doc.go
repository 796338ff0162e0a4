// Package tpm keeps the agent's anti-rollback counters (agent.Counter) in
// TPM 2.0 NV counters, so that they survive what a file cannot: the state
// directory being restored wholesale from an old copy, or the flash being
// rewritten offline (CCDS UPE03, UPE12, UPE16; EN 303 645 5.3-2, 5.4-1).
// An NV counter (TPM_NT_COUNTER) can only be incremented; the TPM refuses
// any other write, and even deleting and redefining it does not reset it —
// its first increment starts above the highest value any deleted counter
// ever held.
//
// # Layout
//
// Each component (rootfs, app, …) takes one slot: two NV indices in a
// documented range of the owner hierarchy (TCG: 0x01800000–0x01BFFFFF),
// by default 32 indices from DefaultBase = 0x01804B00 for 16 slots:
//
//	DefaultBase + 2i     record: ordinary index, 56 bytes, written once and
//	                     then write-locked for good (TPMA_NV_WRITEDEFINE):
//	                     "koshinC1" | base | start (uint64s) | SHA-256(component)
//	DefaultBase + 2i + 1 counter: TPM_NT_COUNTER, 8 bytes
//
// A counter's first increment starts at an arbitrary value (the highest any
// deleted counter ever reached, plus one). The record captures that value
// (base) together with the component's value at that moment (start), and
// the value koshin reads is start + counter − base. Slots are taken in
// order, the first time a component's counter advances or when Define
// gives it one (koshin-agent does, at start-up, so that the owner
// authorisation is never needed at a commit); a component with no slot
// reads as 0, and its first Advance(n) or Define(n) sets start = n directly.
//
// After that, Advance increments the hardware counter one step at a time up
// to the requested value — a TPM offers no other way up — and refuses jumps
// of more than MaxIncrements steps before touching anything, since every
// step is an NV write that wears the TPM. With a TPM counter, release
// counters should therefore grow by small steps (1 per release is ideal, not
// dates). A power cut part-way leaves a value between the old and the new;
// the engine's commit repeats Advance on the next start, which finishes the
// climb.
//
// # Authorisation
//
// Defining the indices needs the owner hierarchy's authorisation
// (Options.OwnerAuth, sent as a password session, so provision where the
// TPM bus is not exposed: at the factory). Incrementing and reading use
// the indices' own, empty, authorisation, so after provisioning the agent
// needs no owner secret. On a production device set an owner password at
// provisioning (e.g. tpm2_changeauth -c owner) and keep it off the device:
// then nobody on the device can delete the indices, which is the one way to
// make a counter read low again (by deleting both the record and the counter
// and starting over). Any process that can open /dev/tpmrm0 can still push a
// counter up, which only delays updates; leave the device node to the agent.
//
// # Retries
//
// Every TPM command runs in a retry loop: TPM_RC_RETRY, TPM_RC_YIELDED,
// TPM_RC_TESTING, TPM_RC_NV_RATE and TPM_RC_NV_UNAVAILABLE are warnings
// that ask the caller to send the same command again (swtpm answers
// TPM_RC_RETRY to some commands; hardware TPMs rate-limit NV writes).
//
// # Integrity checks
//
// Every read checks the indices' public areas (type, size and attributes
// exactly as koshin defines them) and the record's contents; anything else
// — a record without its counter, a counter below its base, an ordinary
// index where a counter should be — is agent.ErrCorruptCounter, which the
// engine treats as "refuse every update", never as 0.
package tpm
