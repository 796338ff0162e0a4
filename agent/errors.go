package agent

import "errors"

var (
	// ErrReboot is returned by Engine.Start and Engine.Poll after the engine
	// asked the system to reboot (Config.Reboot): the caller must not start
	// more work in this boot.
	ErrReboot = errors.New("agent: reboot requested")
	// ErrBusy: another agent process holds the state directory's lock.
	ErrBusy = errors.New("agent: state directory locked by another process")
	// ErrCorruptJournal: the journal file exists but is not a valid journal.
	// The engine keeps a copy for diagnosis and starts without a
	// transaction; it never acts on a journal that failed validation.
	ErrCorruptJournal = errors.New("agent: corrupt journal")
	// ErrCorruptCounter: no copy of the anti-rollback counter passed its
	// integrity check. The engine refuses to install rather than assume 0.
	ErrCorruptCounter = errors.New("agent: corrupt anti-rollback counter")
	// ErrNoResume is returned by Installer.Open when the destination cannot
	// continue at the requested offset (e.g. the staged bytes are shorter
	// than the checkpoint); the engine then restarts the download at 0.
	ErrNoResume = errors.New("agent: cannot resume at offset")
	// ErrSlotMismatch: reading the written slot back did not give the bytes
	// that were verified while streaming.
	ErrSlotMismatch = errors.New("agent: slot read-back mismatch")
	// ErrHealth: a health check failed on the new image.
	ErrHealth = errors.New("agent: health check failed")
)

// ErrUnusable: a verified payload that this device cannot install (larger
// than the slot, an archive with forbidden entries). Reported as failed.
var ErrUnusable = errors.New("agent: payload cannot be installed")
