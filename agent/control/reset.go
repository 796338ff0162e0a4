package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/identity"
	"github.com/koshin-ota/koshin/internal/atomicfile"
)

// ResetConfig says what a factory reset erases besides the identity and
// the control API's own state (EN 303 645 5.11-1, CCDS HLC06, STS08).
type ResetConfig struct {
	// DataKeys are keys protecting user data (e.g. the key file of an
	// encrypted data partition). They are destroyed first: once they are
	// gone the data they protect is unreadable, whatever happens to the
	// remaining steps (crypto-erase).
	DataKeys []string
	// Commands run after the keys are destroyed, e.g.
	// ["cryptsetup", "erase", "/dev/mmcblk0p4"] for a LUKS header.
	Commands       [][]string
	CommandTimeout time.Duration // per command, default 10 minutes
	// DataDirs are directories of user data; their contents are deleted,
	// the directories (often mount points) stay.
	DataDirs []string
	Identity identity.Store
	// TrustDir is the trust core's metadata directory. Only the last
	// director instruction, which belongs to the old identity, is
	// deleted; trusted roots and image metadata stay.
	TrustDir string
}

// resetMarker exists while a reset is in progress: a reset interrupted by
// a power cut is finished at the next start (ResumeReset).
const resetMarker = "reset-pending"

// maxListed bounds the deletions listed per data directory.
const maxListed = 1000

func (s *Server) reset(w http.ResponseWriter, r *http.Request, _ Cred) error {
	var req ResetRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Confirm != ResetConfirmation {
		return errorf(http.StatusBadRequest, "a factory reset erases user data and keys; confirm with %q", ResetConfirmation)
	}
	res, err := s.FactoryReset(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	if s.cfg.OnReset != nil {
		s.cfg.OnReset(res)
	}
	return nil
}

// FactoryReset erases user data and keys, keeps the installed software and
// the trusted roots, rotates the identity, and returns exactly what it
// deleted (EN 303 645 5.11-4). A marker file makes it resume after a power
// cut.
func (s *Server) FactoryReset(ctx context.Context) (ResetResult, error) {
	d, err := s.cfg.Engine.Details(ctx)
	if err != nil {
		return ResetResult{}, err
	}
	if err := s.state.WriteFile(resetMarker, []byte(s.cfg.Now().UTC().Format(time.RFC3339))); err != nil {
		return ResetResult{}, err
	}
	var res ResetResult
	err = s.cfg.Engine.FactoryReset(ctx, func(ctx context.Context) error {
		var err error
		res, err = s.erase(ctx)
		return err
	})
	if err != nil {
		return res, err
	}
	res.Kept = append([]string{"installed software: " + components(d.Installed)}, kept(s.cfg.Reset)...)
	res.Completed = s.cfg.Now().UTC()
	if err := os.Remove(filepath.Join(s.cfg.StateDir, resetMarker)); err != nil {
		return res, err
	}
	s.cfg.Log.Warn("factory reset done", "deleted", len(res.Deleted), "device", res.DeviceID)
	return res, atomicfile.SyncDir(s.cfg.StateDir)
}

// ResumeReset finishes a reset that a power cut interrupted; it does
// nothing if none was in progress. Call it before the agent checks in.
func (s *Server) ResumeReset(ctx context.Context) (*ResetResult, error) {
	if _, err := s.state.ReadFile(resetMarker); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	s.cfg.Log.Warn("finishing an interrupted factory reset")
	res, err := s.FactoryReset(ctx)
	return &res, err
}

func components(in map[string]agent.Installed) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(in)) {
		parts = append(parts, fmt.Sprintf("%s %s", name, in[name].Version))
	}
	if len(parts) == 0 {
		return "(none recorded)"
	}
	return strings.Join(parts, ", ")
}

func kept(c ResetConfig) []string {
	return []string{
		"A/B system slots and the bootloader environment",
		"trusted roots and metadata of the image and director repositories (" + c.TrustDir + ")",
		"anti-rollback counters",
		"update server CA (" + filepath.Join(c.Identity.Dir, identity.ServerCAFile) + ")",
	}
}

// erase runs the reset's steps in an order that fails safe: keys
// protecting data first, then the data, then the identity, then the local
// state. Every step tolerates what an earlier, interrupted run left.
func (s *Server) erase(ctx context.Context) (ResetResult, error) {
	var res ResetResult
	rc := s.cfg.Reset
	for _, p := range rc.DataKeys {
		ok, err := identity.Destroy(p)
		if err != nil {
			return res, fmt.Errorf("destroy data key: %w", err)
		}
		if ok {
			res.Deleted = append(res.Deleted, Deletion{Path: p, What: "data encryption key (crypto-erase)"})
		}
	}
	for _, argv := range rc.Commands {
		if err := runCommand(ctx, argv, rc.CommandTimeout); err != nil {
			return res, err
		}
		res.Deleted = append(res.Deleted, Deletion{Path: argv[0], What: "ran: " + strings.Join(argv, " ")})
	}
	for _, dir := range rc.DataDirs {
		dels, err := eraseDir(dir)
		res.Deleted = append(res.Deleted, dels...)
		if err != nil {
			return res, err
		}
	}
	if err := s.rotateIdentity(&res); err != nil {
		return res, err
	}
	return res, s.resetLocal(&res)
}

func (s *Server) rotateIdentity(res *ResetResult) error {
	rc := s.cfg.Reset
	if rc.Identity.Dir != "" {
		id, deleted, err := rc.Identity.Rotate()
		for _, p := range deleted {
			res.Deleted = append(res.Deleted, Deletion{Path: p, What: identityWhat[filepath.Base(p)]})
		}
		if err != nil {
			return fmt.Errorf("rotate identity: %w", err)
		}
		res.DeviceID, res.EnrollAgain = id.ID, true
	}
	if rc.TrustDir != "" {
		p := filepath.Join(rc.TrustDir, "director", "targets.json")
		ok, err := identity.Destroy(p)
		if err != nil {
			return err
		}
		if ok {
			res.Deleted = append(res.Deleted, Deletion{Path: p, What: "last update instruction for the old identity"})
		}
	}
	return nil
}

var identityWhat = map[string]string{
	identity.KeyFile:           "device identity key",
	identity.EncryptionKeyFile: "device encryption key",
	identity.CertFile:          "device certificate",
	identity.EnrollmentFile:    "enrollment record",
}

// resetLocal returns the control API's own state to the factory state:
// secure default settings, no decisions, no lockouts, a new token and a
// new offline nonce.
func (s *Server) resetLocal(res *ResetResult) error {
	if err := s.cfg.Settings.Set(DefaultSettings()); err != nil {
		return err
	}
	res.Deleted = append(res.Deleted, Deletion{Path: filepath.Join(s.cfg.StateDir, settingsFile), What: "update settings (restored to the secure defaults)"})
	s.cfg.Consent.clear()
	res.Deleted = append(res.Deleted, Deletion{Path: filepath.Join(s.cfg.StateDir, consentFile), What: "update decisions (approvals, postponements, declines)"})
	s.lock.reset()
	s.saveLockouts()
	tok, err := rotateToken(s.cfg.TokenFile)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.token, s.last = tok, nil
	s.mu.Unlock()
	res.Deleted = append(res.Deleted, Deletion{Path: s.cfg.TokenFile, What: "control API token (a new one was generated)"})
	if _, err := s.cfg.Nonces.Rotate(); err != nil {
		return err
	}
	return nil
}

// eraseDir deletes dir's contents, listing each top-level entry with what
// it held. Symbolic links are deleted, never followed.
func eraseDir(dir string) ([]Deletion, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("erase %s: %w", dir, err)
	}
	var dels []Deletion
	var rest Deletion
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		files, n := usage(p)
		if err := os.RemoveAll(p); err != nil {
			return dels, fmt.Errorf("erase %s: %w", p, err)
		}
		if len(dels) < maxListed {
			dels = append(dels, Deletion{Path: p, What: "user data", Files: files, Bytes: n})
			continue
		}
		rest.Files += files
		rest.Bytes += n
	}
	if rest.Files > 0 {
		dels = append(dels, Deletion{Path: dir, What: fmt.Sprintf("user data: %d further entries", len(entries)-maxListed), Files: rest.Files, Bytes: rest.Bytes})
	}
	return dels, atomicfile.SyncDir(dir)
}

// usage counts the files under p and their bytes.
func usage(p string) (files int, bytes int64) {
	filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		files++
		if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
			bytes += fi.Size()
		}
		return nil
	})
	return files, bytes
}

func runCommand(ctx context.Context, argv []string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		msg := out.Bytes()
		if len(msg) > 512 {
			msg = msg[:512]
		}
		return fmt.Errorf("reset command %s: %v: %s", argv[0], err, bytes.TrimSpace(msg))
	}
	return nil
}
