package keys

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/koshin-ota/koshin/internal/atomicfile"
)

// writeNewFile creates name with data, durably and atomically, and fails
// with fs.ErrExist if name already exists. atomicfile.Write renames over
// its target, which is right for state files and wrong for keys; here the
// fsynced temporary file is hard-linked into place instead, and link(2)
// refuses an existing name atomically.
func writeNewFile(name string, data []byte, perm os.FileMode) error {
	if _, err := os.Lstat(name); err == nil {
		return fmt.Errorf("write key %s: %w", name, fs.ErrExist)
	}
	dir := filepath.Dir(name)
	tmp, err := writeTemp(dir, filepath.Base(name), data, perm)
	if err != nil {
		return fmt.Errorf("write key %s: %w", name, err)
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, name); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("write key %s: %w", name, fs.ErrExist)
		}
		// Filesystems without hard links (FAT on a ceremony USB stick):
		// exclusive create still never replaces a key, at the cost of a
		// torn file if power fails before the write completes.
		if err := writeExclusive(name, data, perm); err != nil {
			return fmt.Errorf("write key %s: %w", name, err)
		}
	}
	return atomicfile.SyncDir(dir)
}

func writeTemp(dir, base string, data []byte, perm os.FileMode) (name string, err error) {
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	if err := fill(f, data, perm); err != nil {
		return "", err
	}
	return f.Name(), nil
}

func writeExclusive(name string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if err := fill(f, data, perm); err != nil {
		os.Remove(name)
		return err
	}
	return nil
}

// fill sets the mode (umask may have narrowed it, CreateTemp chose its own)
// before any data is written, then writes, fsyncs and closes f.
func fill(f *os.File, data []byte, perm os.FileMode) error {
	err := f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
