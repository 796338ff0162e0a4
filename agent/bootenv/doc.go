// Package bootenv adapts the bootloader environments of packages
// agent/uboot and agent/grub to agent.Bootloader, so the engine drives both
// the same way.
//
// Both adapters re-read the environment for every call and save it once per
// change: the environment on the medium is the only state, so a power cut
// between calls loses nothing, and a tool such as fw_setenv or grub-editenv
// writing in between is seen rather than overwritten.
//
// The running slot comes from the kernel command line (koshin.slot=X, which
// the boot scripts in agent/uboot/testdata and agent/grub/testdata pass):
// only the bootloader knows what it booted.
package bootenv
