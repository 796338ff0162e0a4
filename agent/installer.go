package agent

import (
	"context"
	"io"
)

// Installer is the handler for one kind of payload (package agent/install
// holds the raw-image, archive and update-module handlers). The engine owns
// the order of calls and the journal; an installer owns its destination.
//
// Every method may be called again for the same transaction after a power
// cut, so each must be idempotent or start over cleanly.
type Installer interface {
	// Reboots reports whether the payload goes into the inactive slot and
	// takes effect through a reboot under boot counting (A/B), or is applied
	// in place by Install.
	Reboots() bool
	// Resumable reports whether Open can continue a download of t at an
	// offset after a restart. Within one run the engine resumes dropped
	// connections regardless (the hash state lives in memory).
	Resumable(t Target) bool
	// Open prepares the destination for the payload's bytes from offset on.
	// tx.Slot names the inactive slot for A/B installers. It returns
	// ErrNoResume if it cannot continue at offset.
	Open(ctx context.Context, tx *Transaction, offset int64) (Sink, error)
	// Verify reads back what the sink stored and checks it against the
	// signed digest or tx.Written; mismatches wrap ErrSlotMismatch.
	Verify(ctx context.Context, tx *Transaction) error
	// Install applies a verified payload in place (no-op for A/B).
	Install(ctx context.Context, tx *Transaction) error
	// Commit makes an in-place install permanent and frees what Rollback
	// would have needed (no-op for A/B: the bootloader commits).
	Commit(ctx context.Context, tx *Transaction) error
	// Rollback undoes an in-place install or discards a staged payload.
	Rollback(ctx context.Context, tx *Transaction) error
}

// Sink receives the payload stream while it is being verified. Bytes it
// receives are unverified until the engine's payload reader returned io.EOF;
// a sink must therefore write only where unverified data is harmless (the
// inactive slot, a staging file).
type Sink interface {
	io.Writer
	// Sync makes everything written so far durable; the engine calls it
	// before recording a checkpoint, so the journal never claims bytes the
	// destination might have lost.
	Sync() error
	// Finish syncs and closes, returning what was stored by this sink. A
	// sink that stores the stream unchanged may leave SHA256 empty (the
	// signed digest then applies); a transforming sink (decompression)
	// reports the digest of its output for read-back.
	Finish() (Digest, error)
	// Abort releases the destination without finishing.
	Abort() error
}
