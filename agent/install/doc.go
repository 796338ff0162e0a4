// Package install holds the agent's install handlers (agent.Installer):
//
//   - Raw writes a raw image, plain or zstd-compressed, into the inactive
//     A/B slot while it downloads, and reads the slot back for verification.
//     Plain images resume after a restart from the last checkpoint;
//     compressed ones restart (a decompressor's state cannot be saved).
//   - Archive unpacks a tar (optionally zstd) file tree next to the current
//     one and switches a symlink atomically; the previous tree is kept until
//     commit for rollback.
//   - Module hands an application payload to an update module, an executable
//     called once per state (see Module for the protocol).
//
// Archive and Module stage the payload in a file first (resumable), and
// touch nothing else until it verified. FileSlots is the SlotSet for slots
// that are block devices or image files.
package install
