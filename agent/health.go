package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"
)

// HealthCheck decides whether the new image works (CCDS UPE13). It runs on
// the new image during the trial boot; an error rolls the update back.
type HealthCheck interface {
	Check(ctx context.Context) error
}

// DirHealthCheck runs every executable regular file in Dir, in name order,
// each with Timeout, and passes only if all exit 0. A missing or empty
// directory passes: reaching the agent on the new image is then the check
// (the bootloader's boot counting catches images that never get that far).
type DirHealthCheck struct {
	Dir     string
	Timeout time.Duration // per executable; default 60 s
}

// maxCheckOutput bounds what a failing check contributes to the report.
const maxCheckOutput = 512

// Check runs the checks.
func (h DirHealthCheck) Check(ctx context.Context) error {
	progs, err := h.programs()
	if err != nil {
		return err
	}
	for _, p := range progs {
		if err := h.run(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

func (h DirHealthCheck) programs() ([]string, error) {
	entries, err := os.ReadDir(h.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("health checks: %w", err)
	}
	var progs []string
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
			continue
		}
		progs = append(progs, filepath.Join(h.Dir, e.Name()))
	}
	slices.Sort(progs)
	return progs, nil
}

func (h DirHealthCheck) run(ctx context.Context, prog string) error {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, prog)
	// One writer value for both streams: exec then serialises its writes.
	lb := &limitedBuffer{&out}
	cmd.Stdout, cmd.Stderr = lb, lb
	// A check that forks a child keeping stdout open must not hang the
	// agent past its timeout.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %s", timeout)
	}
	return fmt.Errorf("%w: %s: %v: %s", ErrHealth, filepath.Base(prog), err, bytes.TrimSpace(out.Bytes()))
}

type limitedBuffer struct{ b *bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxCheckOutput - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
