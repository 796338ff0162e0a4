package uboot

import (
	"fmt"
	"hash/crc32"
	"maps"
)

// Save writes the variables to the medium and fsyncs them.
//
// Redundant environment: the copy the values were read from is left alone;
// the other copy gets the new values with flags+1, so a power cut at any
// point leaves the previous copy as the one every reader uses. Single copy:
// the copy is rewritten in place, which is not power-safe (see the package
// documentation).
//
// Nothing is written if the variables do not fit (ErrTooLarge) or if the copy
// a reader would now pick is not the one Open read or Save last wrote
// (ErrChanged: another writer got in between; Open again and reapply). Like
// fw_setenv, Save writes nothing when no value changed, sparing the medium.
func (e *Env) Save() error {
	unlock, err := lock(e.cfg.LockPath)
	if err != nil {
		return fmt.Errorf("save uboot env: %w", err)
	}
	defer unlock()
	target, flags := e.next()
	raw, err := Encode(Image{Vars: e.vars, Flags: flags}, int(e.cfg.Copies[target].Size), e.cfg.Redundant())
	if err != nil {
		return fmt.Errorf("save uboot env: %w", err)
	}
	if err := e.checkUnchanged(); err != nil {
		return fmt.Errorf("save uboot env: %w", err)
	}
	if !e.torn && maps.Equal(e.vars, e.saved) {
		return nil
	}
	loc := e.cfg.Copies[target]
	if err := writeCopy(loc, raw, e.writeAt); err != nil {
		// The other copy of a redundant pair still holds the old values;
		// a lone copy may now be half-written, so the next Save may not
		// insist on finding what was read before.
		e.torn = !e.cfg.Redundant()
		return fmt.Errorf("save uboot env: write copy %d (%s at %#x): %w", target, loc.Path, loc.Offset, err)
	}
	e.snap = snapshot{active: target, flags: flags, sum: crc32.ChecksumIEEE(raw)}
	e.saved = maps.Clone(e.vars)
	e.torn = false
	return nil
}

// next returns the copy to write and its flags: for a redundant environment
// the copy not in use, one generation newer (255 wraps to 0, which readers
// take as newer than 255).
func (e *Env) next() (target int, flags uint8) {
	if !e.cfg.Redundant() {
		return 0, 0
	}
	return 1 - e.snap.active, e.snap.flags + 1
}

// checkUnchanged re-reads the copies and verifies that a reader still picks
// the same copy with the same bytes as when this Env last read or wrote it.
func (e *Env) checkUnchanged() error {
	if e.torn {
		return nil
	}
	now, err := load(e.cfg)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrChanged, err)
	}
	if now.active != e.snap.active || now.sum != e.snap.sum {
		return fmt.Errorf("%w: active copy is now %d (was %d)", ErrChanged, now.active, e.snap.active)
	}
	return nil
}
