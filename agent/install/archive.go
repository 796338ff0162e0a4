package install

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/internal/atomicfile"
)

// Archive installs a file tree shipped as a tar archive (".tar", or
// ".tar.zst"/".tzst" for zstd) in place, with an atomic switch:
//
//	ROOT/releases/<transaction>/   one directory per installed tree
//	ROOT/current -> releases/<transaction>
//
// Install unpacks next to the running tree and then replaces the current
// symlink by rename, so readers see the old tree or the new one, never a
// mix. The previous tree stays until Commit, for Rollback. Applications read
// ROOT/current.
type Archive struct {
	Root string
	// Work holds staged payloads (resumable downloads).
	Work string
	// Limits on what an archive may unpack to (defaults: 100 000 entries,
	// 4 GiB).
	MaxEntries int
	MaxBytes   int64
	// MaxWindow bounds the zstd window (default 8 MiB).
	MaxWindow uint64
}

var _ agent.Installer = (*Archive)(nil)

const currentLink = "current"

// Reboots: an archive applies in place.
func (a *Archive) Reboots() bool { return false }

// Resumable: the staging file keeps what was downloaded (the engine still
// restarts encrypted payloads).
func (a *Archive) Resumable(agent.Target) bool { return true }

// Open stages the payload in a file.
func (a *Archive) Open(_ context.Context, tx *agent.Transaction, offset int64) (agent.Sink, error) {
	return openStaging(a.Work, tx, offset)
}

// Verify hashes the staged archive.
func (a *Archive) Verify(ctx context.Context, tx *agent.Transaction) error {
	return verifyStaged(ctx, a.Work, tx)
}

func releaseDir(tx *agent.Transaction) string { return filepath.Join("releases", tx.ID) }

// Install unpacks the verified archive and switches current to it. After a
// power cut it is called again: a finished unpack is kept, an unfinished one
// redone, and the switch repeated.
func (a *Archive) Install(_ context.Context, tx *agent.Transaction) error {
	rel := releaseDir(tx)
	if cur, _ := os.Readlink(filepath.Join(a.Root, currentLink)); cur == rel {
		return nil
	}
	if err := a.recordPrevious(tx); err != nil {
		return err
	}
	if err := a.unpackOnce(tx); err != nil {
		return err
	}
	return switchLink(a.Root, currentLink, rel)
}

// recordPrevious notes what current pointed to before this transaction,
// once: after the switch, current no longer tells.
func (a *Archive) recordPrevious(tx *agent.Transaction) error {
	p := filepath.Join(stagingDir(a.Work, tx), "previous")
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	cur, err := os.Readlink(filepath.Join(a.Root, currentLink))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return atomicfile.WriteFile(p, []byte(cur), 0o600)
}

func (a *Archive) previous(tx *agent.Transaction) (string, bool) {
	b, err := os.ReadFile(filepath.Join(stagingDir(a.Work, tx), "previous"))
	return string(b), err == nil
}

// unpackOnce unpacks into a temporary directory and renames it into place,
// so releases/<transaction> exists only complete.
func (a *Archive) unpackOnce(tx *agent.Transaction) error {
	final := filepath.Join(a.Root, releaseDir(tx))
	if _, err := os.Stat(final); err == nil {
		return nil
	}
	tmp := final + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	src, err := os.Open(filepath.Join(stagingDir(a.Work, tx), payloadFile))
	if err != nil {
		return err
	}
	defer src.Close()
	u := unpacker{maxEntries: a.MaxEntries, maxBytes: a.MaxBytes, maxWindow: a.MaxWindow}
	if err := u.unpack(src, tmp, tarZstd(tx.Target.Name)); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	return syncDir(filepath.Dir(final))
}

func tarZstd(name string) bool {
	return strings.HasSuffix(name, ".tar.zst") || strings.HasSuffix(name, ".tzst")
}

// Commit removes the previous tree and the staging directory.
func (a *Archive) Commit(_ context.Context, tx *agent.Transaction) error {
	if prev, ok := a.previous(tx); ok && prev != "" && prev != releaseDir(tx) && safeRelease(prev) {
		if err := os.RemoveAll(filepath.Join(a.Root, prev)); err != nil {
			return err
		}
	}
	return os.RemoveAll(stagingDir(a.Work, tx))
}

// Rollback points current back at the previous tree and removes the new
// one.
func (a *Archive) Rollback(_ context.Context, tx *agent.Transaction) error {
	rel := releaseDir(tx)
	if cur, _ := os.Readlink(filepath.Join(a.Root, currentLink)); cur == rel {
		prev, _ := a.previous(tx)
		if err := restoreLink(a.Root, currentLink, prev); err != nil {
			return err
		}
	}
	for _, p := range []string{filepath.Join(a.Root, rel), filepath.Join(a.Root, rel) + ".tmp", stagingDir(a.Work, tx)} {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}

// safeRelease accepts only what Install itself writes as a link target, so
// a tampered "previous" file cannot make Commit delete elsewhere.
func safeRelease(p string) bool {
	dir, name := filepath.Split(p)
	return dir == "releases"+string(filepath.Separator) && name != "" && name != "." && name != ".."
}

// switchLink points dir/name at target atomically: a new symlink under a
// temporary name, renamed over the old one, then the directory synced.
func switchLink(dir, name, target string) error {
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

func restoreLink(dir, name, target string) error {
	if target == "" {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return syncDir(dir)
	}
	if !safeRelease(target) {
		return fmt.Errorf("install: refusing to restore %s to %q", name, target)
	}
	return switchLink(dir, name, target)
}
