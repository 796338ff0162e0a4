package agent

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/encryption"
)

// download streams the payload from tx.Offset into the installer's sink
// through the verifier's payload reader, checkpointing as it goes.
//
// For a raw image the sink is the inactive slot itself: bytes land there
// before the whole payload is verified. That is safe because the slot is
// not bootable — the bootloader is switched only after the stream's hashes
// matched and the slot was read back — so a bad payload costs a rewrite,
// never a boot. Streaming avoids buffering or staging an image the device
// may have no room for.
func (e *Engine) download(ctx context.Context, tx *Transaction, h Installer) error {
	offset, cp := tx.Offset, tx.Checkpoint
	// Decryption state cannot be saved, so encrypted payloads restart.
	resumable := h.Resumable(tx.Target) && !tx.Target.Encrypted()
	if !resumable {
		offset, cp = 0, nil
	}
	key, err := e.contentKey(&tx.Target)
	if err != nil {
		return err
	}
	sink, err := h.Open(ctx, tx, offset)
	if errors.Is(err, ErrNoResume) && offset > 0 {
		offset, cp = 0, nil
		sink, err = h.Open(ctx, tx, 0)
	}
	if err != nil {
		return fmt.Errorf("%w: open destination: %w", errStore, err)
	}
	finished := false
	defer func() {
		if !finished {
			sink.Abort()
		}
	}()
	body := e.newBody(ctx, &tx.Target, offset)
	defer body.Close()
	pr, err := e.cfg.Verifier.Payload(tx.Target, body, offset, cp)
	if err != nil {
		return err
	}
	var src io.Reader = pr
	if key != nil {
		// Plaintext is released chunk by authenticated chunk, and the
		// last only after the ciphertext's signed hash matched.
		if src, err = encryption.NewReader(pr, key); err != nil {
			return err
		}
	}
	if err := e.stream(tx, sink, src, pr, offset, resumable); err != nil {
		return err
	}
	finished = true
	d, err := sink.Finish()
	if err != nil {
		return fmt.Errorf("%w: finish destination: %w", errStore, err)
	}
	tx.Written = &d
	tx.Offset, tx.Checkpoint = 0, nil
	e.queue(tx, deviceapi.EventDownloaded, "", "")
	return e.move(tx, StateVerifying)
}

// stream copies verified-so-far bytes into the sink. A checkpoint is taken
// only after the sink synced, so the journal never claims more than the
// destination holds durably; when is the checkpoint policy's decision
// (Config.CheckpointEvery bytes and Config.CheckpointMinInterval).
func (e *Engine) stream(tx *Transaction, sink Sink, src io.Reader, pr PayloadReader, off int64, resumable bool) error {
	buf := make([]byte, streamBuffer)
	policy := CheckpointPolicy{Every: e.cfg.CheckpointEvery, MinInterval: max(e.cfg.CheckpointMinInterval, 0), Now: e.cfg.Now}
	policy.Start(off)
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if _, err := sink.Write(buf[:n]); err != nil {
				return fmt.Errorf("%w: store payload: %w", errStore, err)
			}
			off += int64(n)
			if resumable && off < tx.Target.Length && policy.Due(off) {
				if err := e.checkpoint(tx, sink, pr, off); err != nil {
					return err
				}
				policy.Done(off)
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

func (e *Engine) checkpoint(tx *Transaction, sink Sink, pr PayloadReader, off int64) error {
	if err := sink.Sync(); err != nil {
		return fmt.Errorf("%w: sync payload: %w", errStore, err)
	}
	cp, err := pr.Checkpoint()
	if err != nil {
		return fmt.Errorf("%w: checkpoint: %w", errStore, err)
	}
	tx.Offset, tx.Checkpoint = off, cp
	return e.move(tx, StateDownloading)
}

// contentKey unwraps the content key of an encrypted target (nil for a
// plaintext one) with the device's key; failures wrap trust.ErrDecrypt and
// are reported as an invalid update.
func (e *Engine) contentKey(t *Target) ([]byte, error) {
	if !t.Encrypted() {
		return nil, nil
	}
	if e.cfg.DecryptionKey == nil {
		return nil, fmt.Errorf("%w: encrypted release, but this device has no decryption key", trust.ErrDecrypt)
	}
	sum, err := hex.DecodeString(t.SHA256())
	if err != nil {
		return nil, fmt.Errorf("%w: target sha256", trust.ErrInvalid)
	}
	rel, err := encryption.ReleaseID(t.Name, sum)
	if err != nil {
		return nil, err
	}
	return encryption.UnwrapKey(e.cfg.DecryptionKey, t.WrappedKey, e.cfg.DeviceID, rel)
}

// streamBuffer is the size of the reads from the payload stream.
const streamBuffer = 64 << 10

// errStore marks failures of the local destination (as opposed to the
// network or the payload itself).
var errStore = errors.New("local storage")

// downloadFailed decides what a failed download means. Network trouble
// keeps the transaction for the next poll, which resumes from the last
// checkpoint; a transfer below the minimum throughput (slow retrieval) and
// a payload that fails verification end it, and are reported.
func (e *Engine) downloadFailed(ctx context.Context, tx *Transaction, err error) error {
	switch {
	case ctx.Err() != nil, e.j == nil:
		return err // stopping, or a journal write failed: resolve again from disk
	case errors.Is(err, ErrUnusable):
		return e.fail(ctx, tx, deviceapi.EventFailed, "unusable", err.Error())
	case errors.Is(err, errStore):
		return err // local trouble (disk, power): the transaction stays to resume
	case errors.Is(err, trust.ErrTooSlow):
		return e.fail(ctx, tx, deviceapi.EventFailed, "too-slow", err.Error())
	case errors.Is(err, trust.ErrNotFound):
		// The server or mirror lacks the payload: a distribution fault,
		// not an invalid update.
		return e.fail(ctx, tx, deviceapi.EventFailed, "not-found", err.Error())
	case isRejection(err):
		return e.fail(ctx, tx, deviceapi.EventRejected, rejectionReason(err), err.Error())
	}
	e.cfg.Log.Warn("download interrupted; will resume", "target", tx.Target.Name, "offset", tx.Offset, "err", err)
	return err
}
