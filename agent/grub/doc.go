// Package grub reads and writes the GRUB environment block (grubenv): the
// file GRUB's load_env reads at boot to choose a slot and its save_env
// updates to count trial boots. It is byte-compatible with grub-editenv,
// which interop_test.go checks.
//
// # Format
//
// The block is a fixed-size file, 1024 bytes as grub-editenv creates it:
// the line "# GRUB Environment Block", then (GRUB 2.04 and later) a warning
// comment, then name=value lines, padded to the end with '#'. In values a
// backslash is written as \\ and a newline as a backslash followed by the
// newline. Lines starting with '#' are comments. Set edits the block the way
// grub-editenv set does (an existing line is changed in place, a new one is
// appended before the padding) and Delete the way grub-editenv unset does, so
// the same edits give the same bytes and comments are kept. Content that no
// longer fits in the block is refused.
//
// # Power safety
//
// GRUB itself only ever rewrites the block in place: save_env overwrites the
// file's existing sectors, since it cannot allocate, which is why the block
// has a fixed size and why GRUB refuses save_env on file systems such as
// btrfs, LVM or RAID; keep grubenv on the ESP or a plain /boot. koshin's Save
// instead writes a complete new block to a temporary file, fsyncs it, renames
// it over grubenv and fsyncs the directory, so a power cut leaves the old or
// the new block, never a torn one (EN 303 645 5.9-2). On ext4 and similar the
// rename is atomic; on the FAT of an ESP it is the best Linux offers and
// still never exposes a half-written block. A grubenv that is a symlink is
// replaced at its target; one that is not a regular file (a device) is
// overwritten in place and fsynced, like GRUB does.
//
// # Boot counting
//
// GRUB script has no arithmetic, so trial boots use *_OK and *_TRY flags per
// slot and an order variable (see testdata/koshin-ab.cfg, whose names match
// the constants here). ArmTrial marks a slot bootable with one trial armed
// and puts it first; on the next boot GRUB takes the trial (X_TRY 1 -> 2,
// saved before booting) and boots it. The agent confirms a healthy slot with
// Commit (X_TRY back to 0). If the slot fails before that, the next boot
// finds X_TRY=2 and falls back to the next slot in the order, and the agent
// recognises the rollback from that state (CCDS UPE13, UPE14).
package grub
