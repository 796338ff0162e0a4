package agenttest

import (
	"os"
	"path/filepath"

	"github.com/koshin-ota/koshin/agent"
)

// FS is an agent.StateFS in a directory whose writes are power-cut points
// ("write NAME"). A write replaces the file by rename, as the production
// DirFS does; it skips fsync because the simulation models durability
// itself: what happened before the cut point is on disk, what did not
// happen is not. A cut at a write may leave a partial temporary file, as a
// real interrupted atomic write does.
type FS struct {
	Dir string
	Inj *Injector
}

var _ agent.StateFS = (*FS)(nil)

// ReadFile reads name.
func (f *FS) ReadFile(name string) ([]byte, error) {
	if err := f.Inj.Alive(); err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(f.Dir, name))
}

// WriteFile replaces name atomically, or is cut.
func (f *FS) WriteFile(name string, data []byte) error {
	here, err := f.Inj.Cut("write " + name)
	if here && len(data) > 0 {
		torn := data[:f.Inj.Rand(len(data))]
		os.WriteFile(filepath.Join(f.Dir, "."+name+".tmp-torn"), torn, 0o600)
	}
	if err != nil {
		return err
	}
	return replace(filepath.Join(f.Dir, name), data)
}

// RemoveTemp deletes leftovers of interrupted writes, like agent.DirFS.
func (f *FS) RemoveTemp() error {
	if err := f.Inj.Alive(); err != nil {
		return err
	}
	return agent.DirFS(f.Dir).RemoveTemp()
}

// Peek reads a file regardless of power (for test assertions).
func (f *FS) Peek(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(f.Dir, name))
}

func replace(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
