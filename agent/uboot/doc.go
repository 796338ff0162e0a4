// Package uboot reads and writes the U-Boot environment: the bytes U-Boot
// reads at power-on to choose a slot (the koshin_slot variable) and to count
// trial boots (bootcount, bootlimit, upgrade_available). A wrong byte here
// can leave a device unbootable, so the package is byte-compatible with
// U-Boot's saveenv and with libubootenv's fw_printenv/fw_setenv, and it is
// cross-checked against those tools and mkenvimage in interop_test.go.
//
// # Format
//
// One environment copy occupies Size bytes at Offset in a file or block
// device (a fw_env.config line). It holds a CRC32 (IEEE) of the data area,
// stored in the CPU's native byte order like U-Boot and libubootenv do; for a
// redundant environment one flags byte; then the data area: NUL-terminated
// name=value entries, sorted by name, ended by an empty entry and padded with
// 0x00 to the end. The CRC covers the whole data area, padding included.
//
// # Power safety
//
// A redundant environment (two copies) is what makes slot switching safe
// against power loss (EN 303 645 5.9-2; CCDS UPE13, UPE14). Save never
// touches the copy the values were read from: it writes the other copy with
// the flags byte incremented and fsyncs it. Until that write is complete the
// new copy's CRC does not match, so U-Boot, libubootenv and Open keep using
// the previous copy; once it is complete its flags make it the newer one.
// Flags compare as U-Boot does: greater wins, except that 0 follows 255.
//
// A single-copy environment is rewritten in place and is not power-safe: a
// power cut during Save leaves a copy with a bad CRC and U-Boot falls back to
// its built-in default environment, losing the slot choice. Use a redundant
// environment on devices that receive updates.
//
// Open refuses an environment with no valid copy (ErrNoValidCopy) instead of
// starting an empty one: writing an environment without bootcmd would stop
// the device from booting. Save refuses to write when another writer changed
// the environment since Open (ErrChanged); set Config.LockPath to
// DefaultLockPath to also exclude fw_setenv, which takes the same lock.
//
// MTD and UBI devices (raw NOR/NAND flash needing erase before write) are not
// supported; eMMC, SD, block-device partitions and plain files are.
//
// # Boot counting
//
// ArmTrial and Commit drive U-Boot's CONFIG_BOOTCOUNT_LIMIT with
// CONFIG_BOOTCOUNT_ENV. testdata/ab-boot.env is a matching environment
// (mkenvimage input): bootcmd boots the slot named by koshin_slot; while
// upgrade_available is 1 U-Boot increments bootcount on every boot and, once
// it exceeds bootlimit, runs altbootcmd instead, which switches koshin_slot
// back, clears upgrade_available and saves. The agent commits a healthy trial
// slot by clearing upgrade_available and bootcount, and recognises a rollback
// when koshin_slot no longer names the slot it armed.
package uboot
