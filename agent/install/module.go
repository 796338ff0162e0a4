package install

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/internal/atomicfile"
)

// Module hands an application payload to an update module: an executable
// that knows how to install one kind of payload (a container image, a
// firmware blob for a co-processor, a database migration...).
//
// # Protocol
//
// The agent downloads and verifies the payload itself; the module never
// sees unverified bytes. It then runs
//
//	MODULE STATE WORKDIR
//
// for STATE in this order: "download" (the verified payload is available;
// stage it, do not change the running system), "install" (apply it), and
// later either "commit" (the health check passed; make it permanent, drop
// what rollback would need) or "rollback" (undo install; also called after a
// failed download or install). WORKDIR holds
//
//	payload      the verified payload, exactly the signed bytes
//	target.json  {"name", "component", "version", "release_counter",
//	             "sha256", "length"} of the signed target
//
// and the module may keep its own files there until commit or rollback,
// after which the agent deletes the directory. Exit status 0 means success;
// anything else, or running longer than the timeout, is failure, and the
// first 512 bytes of output go into the report. The environment holds only
// PATH. After a power cut the agent may run the same state again, so every
// state must be idempotent; "rollback" may follow any other state.
type Module struct {
	Path string
	// Work holds one WORKDIR per transaction.
	Work string
	// Timeout per state (default 10 minutes).
	Timeout time.Duration
}

var _ agent.Installer = (*Module)(nil)

// Reboots: modules apply in place.
func (m *Module) Reboots() bool { return false }

// Resumable: the payload is staged in WORKDIR.
func (m *Module) Resumable(agent.Target) bool { return true }

// Open stages the payload.
func (m *Module) Open(_ context.Context, tx *agent.Transaction, offset int64) (agent.Sink, error) {
	return openStaging(m.Work, tx, offset)
}

// Verify hashes the staged payload.
func (m *Module) Verify(ctx context.Context, tx *agent.Transaction) error {
	return verifyStaged(ctx, m.Work, tx)
}

type moduleTarget struct {
	Name           string `json:"name"`
	Component      string `json:"component"`
	Version        string `json:"version"`
	ReleaseCounter uint64 `json:"release_counter"`
	SHA256         string `json:"sha256"`
	Length         int64  `json:"length"`
}

// Install runs "download" then "install".
func (m *Module) Install(ctx context.Context, tx *agent.Transaction) error {
	t := tx.Target
	b, err := json.Marshal(moduleTarget{Name: t.Name, Component: t.Custom.Component, Version: t.Custom.Version,
		ReleaseCounter: t.Custom.ReleaseCounter, SHA256: t.SHA256(), Length: t.Length})
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(stagingDir(m.Work, tx), "target.json"), b, 0o600); err != nil {
		return err
	}
	if err := m.run(ctx, tx, "download"); err != nil {
		return err
	}
	return m.run(ctx, tx, "install")
}

// Commit runs "commit" and removes WORKDIR.
func (m *Module) Commit(ctx context.Context, tx *agent.Transaction) error {
	if err := m.run(ctx, tx, "commit"); err != nil {
		return err
	}
	return os.RemoveAll(stagingDir(m.Work, tx))
}

// Rollback runs "rollback" if the module was involved, and removes WORKDIR.
func (m *Module) Rollback(ctx context.Context, tx *agent.Transaction) error {
	_, err := os.Stat(filepath.Join(stagingDir(m.Work, tx), "target.json"))
	if err == nil {
		if err := m.run(ctx, tx, "rollback"); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.RemoveAll(stagingDir(m.Work, tx))
}

func (m *Module) run(ctx context.Context, tx *agent.Transaction, state string) error {
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, m.Path, state, stagingDir(m.Work, tx))
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	var out bytes.Buffer
	w := &capped{b: &out, room: 512}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %s", timeout)
	}
	return fmt.Errorf("update module %s %s: %v: %s", filepath.Base(m.Path), state, err, bytes.TrimSpace(out.Bytes()))
}

// capped keeps the first room bytes written to it.
type capped struct {
	b    *bytes.Buffer
	room int
}

func (c *capped) Write(p []byte) (int, error) {
	if c.room > 0 {
		n := min(len(p), c.room)
		c.b.Write(p[:n])
		c.room -= n
	}
	return len(p), nil
}
