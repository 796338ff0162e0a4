package verify

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/koshin-ota/koshin/internal/atomicfile"
	"github.com/koshin-ota/koshin/trust"
)

// store keeps one repository's trusted metadata in a directory, one
// <role>.json per role (non-versioned names, as the TUF client workflow and
// the conformance suite expect). Every write is atomic and durable: a power
// cut leaves either the previous trusted file or the new one.
type store struct {
	dir string
	// writeFile replaces a file atomically; nil means atomicfile.WriteFile.
	// Fault-injection tests pass their own to cut power at every write.
	writeFile func(name string, data []byte, perm os.FileMode) error
}

// Subdirectories of Config.Dir.
const (
	imageSubdir    = "image"
	directorSubdir = "director"
)

func (s store) path(role string) string {
	return filepath.Join(s.dir, url.PathEscape(role)+".json")
}

// read returns a stored file; a missing file wraps fs.ErrNotExist and one
// larger than max (local corruption) wraps trust.ErrTooLong.
func (s store) read(role string, max int64) ([]byte, error) {
	f, err := os.Open(s.path(role))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%w: %s exceeds %d bytes", trust.ErrTooLong, f.Name(), max)
	}
	return data, nil
}

func (s store) write(role string, data []byte) error {
	if s.writeFile != nil {
		return s.writeFile(s.path(role), data, 0o600)
	}
	return atomicfile.WriteFile(s.path(role), data, 0o600)
}

func (s store) exists(role string) (bool, error) {
	_, err := os.Stat(s.path(role))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// mkdir creates the directory private to the agent: trusted metadata is not
// secret, but nothing else on the device should be able to swap it.
func (s store) mkdir() error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(s.dir))
}
