package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/koshin-ota/koshin/internal/atomicfile"
)

// MaxStateFile bounds every small state file the engine reads.
const MaxStateFile = 1 << 20

// StateFS stores the engine's small state files (journal, counter copies,
// trusted metadata). WriteFile replaces a file atomically: after a power
// cut a reader sees the old or the new content, never a mix. Package
// agenttest substitutes an implementation that cuts power at each write.
type StateFS interface {
	// ReadFile returns the file's content, or an error wrapping
	// fs.ErrNotExist.
	ReadFile(name string) ([]byte, error)
	WriteFile(name string, data []byte) error
}

// DirFS is the production StateFS: files in one directory, written through
// internal/atomicfile (temp file, fsync, rename, fsync directory), mode
// 0600 because the journal reveals what the device runs.
type DirFS string

// ReadFile reads name, refusing files larger than MaxStateFile.
func (d DirFS) ReadFile(name string) ([]byte, error) {
	f, err := os.Open(d.path(name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxStateFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxStateFile {
		return nil, fmt.Errorf("agent: state file %s larger than %d bytes", name, MaxStateFile)
	}
	return b, nil
}

// WriteFile atomically replaces name.
func (d DirFS) WriteFile(name string, data []byte) error {
	return atomicfile.WriteFile(d.path(name), data, 0o600)
}

// RemoveTemp deletes temporary files that an interrupted atomic write left
// behind (".NAME.tmp*"); the engine calls it at start-up so that repeated
// power cuts cannot fill the state partition.
func (d DirFS) RemoveTemp() error {
	entries, err := os.ReadDir(string(d))
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp") && e.Type().IsRegular() {
			errs = append(errs, os.Remove(filepath.Join(string(d), n)))
		}
	}
	return errors.Join(errs...)
}

func (d DirFS) path(name string) string { return filepath.Join(string(d), filepath.Base(name)) }
