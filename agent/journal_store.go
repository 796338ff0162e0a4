package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"unicode/utf8"

	"github.com/koshin-ota/koshin/deviceapi"
)

const (
	journalFile = "journal.json"
	corruptFile = "journal.corrupt"
)

// load reads the journal. A missing journal is a fresh device; a corrupt
// one is kept aside as journal.corrupt, reported, and replaced by an empty
// journal: the engine then acts only on what the bootloader says, which
// can only lead back to the committed slot (see resolveIdle).
func (e *Engine) load() error {
	if r, ok := e.cfg.State.(interface{ RemoveTemp() error }); ok {
		if err := r.RemoveTemp(); err != nil {
			e.cfg.Log.Warn("remove stale temporary files", "err", err)
		}
	}
	b, err := e.cfg.State.ReadFile(journalFile)
	if errors.Is(err, fs.ErrNotExist) {
		e.j = &Journal{Version: JournalVersion}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read journal: %w", err)
	}
	j, err := LoadJournal(b)
	if err == nil {
		e.j = j
		return nil
	}
	e.cfg.Log.Error("journal unusable; starting without a transaction", "err", err)
	if werr := e.cfg.State.WriteFile(corruptFile, b); werr != nil {
		return fmt.Errorf("keep corrupt journal: %w", werr)
	}
	e.j = &Journal{Version: JournalVersion}
	e.queue(nil, deviceapi.EventFailed, "journal-corrupt", err.Error())
	return e.save()
}

// save writes the journal. On failure the in-memory copy is dropped, so the
// next operation reloads what is really on disk and resolves it again
// rather than continuing from a state that was never persisted.
func (e *Engine) save() error {
	if e.j.Tx != nil {
		e.j.Tx.Updated = e.cfg.Now().UTC()
	}
	b, err := e.j.Marshal()
	if err == nil {
		err = e.cfg.State.WriteFile(journalFile, b)
	}
	if err != nil {
		e.j = nil
		return fmt.Errorf("write journal: %w", err)
	}
	return nil
}

// move persists tx in state to, checking the transition table.
func (e *Engine) move(tx *Transaction, to State) error {
	if err := canMove(tx.State, to); err != nil {
		return err
	}
	tx.State = to
	return e.save()
}

// queue appends a report to the outbox; it is persisted with the next save.
// IDs derive from the transaction and event type, so the same report queued
// again after a power cut replaces itself instead of being counted twice.
func (e *Engine) queue(tx *Transaction, typ deviceapi.EventType, reason, detail string) {
	ev := deviceapi.Event{Type: typ, Reason: truncate(reason, maxReason), Detail: truncate(detail, maxDetail), Time: e.cfg.Now().UTC()}
	if tx != nil {
		ev.ID = tx.ID + "-" + string(typ)
		ev.Target = tx.Target.Name
	} else {
		ev.ID = e.newID() + "-" + string(typ)
	}
	e.queueEvent(ev)
}

// queueEvent appends ev to the outbox, replacing a report with its ID.
func (e *Engine) queueEvent(ev deviceapi.Event) {
	for i := range e.j.Outbox {
		if e.j.Outbox[i].ID == ev.ID {
			e.j.Outbox[i] = ev
			return
		}
	}
	// A device offline for long keeps the newest reports; the oldest are
	// progress reports superseded by later ones.
	if len(e.j.Outbox) >= deviceapi.MaxEvents {
		e.j.Outbox = e.j.Outbox[1:]
	}
	e.j.Outbox = append(e.j.Outbox, ev)
}

// flush delivers queued reports. A delivery failure only means they wait
// for the next contact (EN 303 645 5.9-2: the device keeps working
// offline); only a failure to record the delivery is returned.
func (e *Engine) flush(ctx context.Context) error {
	if e.j == nil || len(e.j.Outbox) == 0 {
		return nil
	}
	batch := append([]deviceapi.Event(nil), e.j.Outbox...)
	if err := e.cfg.Server.Events(ctx, deviceapi.EventBatch{Events: batch}); err != nil {
		e.cfg.Log.Info("reports not delivered; kept for later", "events", len(batch), "err", err)
		return nil
	}
	e.j.Outbox = e.j.Outbox[len(batch):]
	return e.save()
}

// truncate makes s valid UTF-8 and at most n bytes, cutting at a rune
// boundary: JSON would otherwise expand invalid bytes and push a report
// past its validated size.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
