package uboot

import (
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
)

// Env is a U-Boot environment read from its configured copies. Changes made
// with Set and Delete stay in memory until Save. An Env is not safe for
// concurrent use.
type Env struct {
	cfg     Config
	vars    map[string]string
	snap    snapshot          // the copy vars came from, as last read or written
	saved   map[string]string // the values in that copy
	torn    bool              // a failed single-copy write left the copy's state unknown
	writeAt writeAtFunc
}

// snapshot identifies the copy a reader would use: its index, flags and a
// checksum of its raw bytes, so Save can tell whether anyone wrote since.
type snapshot struct {
	active int
	flags  uint8
	sum    uint32
	vars   map[string]string // the copy's values; filled by load only
}

// Open reads every copy in cfg and keeps the values of the valid copy a
// reader uses (for two valid copies, the one with the newer flags). It fails
// with ErrNoValidCopy, joined with each copy's error, when no copy verifies:
// U-Boot then runs its built-in default environment, which the agent must
// not overwrite with a partial one.
func Open(cfg Config) (*Env, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("open uboot env: %w", err)
	}
	unlock, err := lock(cfg.LockPath)
	if err != nil {
		return nil, fmt.Errorf("open uboot env: %w", err)
	}
	defer unlock()
	snap, err := load(cfg)
	if err != nil {
		return nil, fmt.Errorf("open uboot env: %w", err)
	}
	e := &Env{cfg: cfg, vars: snap.vars, saved: maps.Clone(snap.vars), snap: snap, writeAt: (*os.File).WriteAt}
	return e, nil
}

// load reads and verifies the copies and picks the one U-Boot would use.
func load(cfg Config) (snapshot, error) {
	var snaps []snapshot
	var errs []error
	for i, loc := range cfg.Copies {
		s, err := loadCopy(loc, cfg.Redundant())
		if err != nil {
			errs = append(errs, fmt.Errorf("copy %d (%s at %#x): %w", i, loc.Path, loc.Offset, err))
			continue
		}
		s.active = i
		snaps = append(snaps, s)
	}
	switch len(snaps) {
	case 0:
		return snapshot{}, errors.Join(append([]error{ErrNoValidCopy}, errs...)...)
	case 2:
		if newer(snaps[1].flags, snaps[0].flags) {
			return snaps[1], nil
		}
	}
	return snaps[0], nil
}

func loadCopy(loc Location, redundant bool) (snapshot, error) {
	raw, err := readCopy(loc)
	if err != nil {
		return snapshot{}, err
	}
	img, err := Decode(raw, redundant)
	if err != nil {
		return snapshot{}, err
	}
	return snapshot{flags: img.Flags, sum: crc32.ChecksumIEEE(raw), vars: img.Vars}, nil
}

// newer reports whether a redundant copy with flags a supersedes one with
// flags b. U-Boot (env_import_redund) and libubootenv compare the same way:
// greater wins, except that 0 follows 255; equal flags keep the first copy.
func newer(a, b uint8) bool {
	switch {
	case a == 0 && b == 255:
		return true
	case a == 255 && b == 0:
		return false
	}
	return a > b
}

// Get returns the value of name and whether it is set.
func (e *Env) Get(name string) (string, bool) {
	v, ok := e.vars[name]
	return v, ok
}

// All returns a copy of every variable.
func (e *Env) All() map[string]string { return maps.Clone(e.vars) }

// Set sets name to value in memory. It fails, changing nothing, if the name
// or value cannot be stored or the environment would no longer fit.
func (e *Env) Set(name, value string) error {
	return e.setMany(name, value)
}

// Delete removes name in memory; deleting an unset name does nothing.
func (e *Env) Delete(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	delete(e.vars, name)
	return nil
}

// setMany applies name, value pairs all together or not at all, so a boot
// helper never leaves half of its variables changed.
func (e *Env) setMany(kv ...string) error {
	next := maps.Clone(e.vars)
	for i := 0; i+1 < len(kv); i += 2 {
		if err := checkVar(kv[i], kv[i+1]); err != nil {
			return err
		}
		next[kv[i]] = kv[i+1]
	}
	if need, room := encodedLen(next), e.dataSize(); need > room {
		return fmt.Errorf("%w: need %d bytes, data area is %d", ErrTooLarge, need, room)
	}
	e.vars = next
	return nil
}

func (e *Env) dataSize() int {
	return int(e.cfg.Copies[0].Size) - headerLen(e.cfg.Redundant())
}
