package grub

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/koshin-ota/koshin/internal/atomicfile"
)

// newFileMode is what grub-editenv create gives a new grubenv (under the
// usual umask 022).
const newFileMode = 0o644

// Save writes the block to its path. A regular file (or a symlink to one) is
// replaced atomically: temporary file, fsync, rename, fsync of the directory.
// Anything else, such as a block device, is overwritten in place and fsynced.
func (e *Env) Save() error {
	if e.path == "" {
		return errors.New("save grub env: no path")
	}
	target, fi, err := resolve(e.path)
	if err != nil {
		return fmt.Errorf("save grub env: %w", err)
	}
	if fi != nil && !fi.Mode().IsRegular() {
		err = writeInPlace(target, e.buf)
	} else {
		mode := fs.FileMode(newFileMode)
		if fi != nil {
			mode = fi.Mode().Perm()
		}
		err = atomicfile.WriteFile(target, e.buf, mode)
	}
	if err != nil {
		return fmt.Errorf("save grub env: %w", err)
	}
	return nil
}

// resolve follows symlinks, so that the rename replaces the file a symlinked
// grubenv points to rather than the link. fi is nil for a new file.
func resolve(path string) (target string, fi fs.FileInfo, err error) {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return path, nil, nil
	}
	target, err = filepath.EvalSymlinks(path)
	if err != nil {
		return "", nil, err
	}
	fi, err = os.Stat(target)
	return target, fi, err
}

func writeInPlace(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	n, err := f.WriteAt(b, 0)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
