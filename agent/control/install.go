package control

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/bundle"
	"github.com/koshin-ota/koshin/trust"
)

// install installs an offline bundle through the same verification and
// engine as an update from the server. Root may name a file the agent
// opens; anyone else streams the bundle, so the agent never opens a path
// with its privileges on behalf of a less privileged caller.
func (s *Server) install(w http.ResponseWriter, r *http.Request, c Cred) error {
	if s.cfg.Bundles == nil {
		return errorf(http.StatusConflict, "offline install is not configured on this device")
	}
	if !s.cfg.Settings.Get().UpdatesEnabled {
		return errorf(http.StatusConflict, "updates are switched off (settings); switch them on to install")
	}
	b, cleanup, err := s.openBundle(w, r, c)
	if err != nil {
		return err
	}
	defer cleanup()
	res, err := s.cfg.Bundles.Install(r.Context(), b)
	if err != nil {
		return installError(err)
	}
	s.cfg.Log.Info("offline bundle installed", "target", res.Target, "reboot", res.Reboot)
	writeJSON(w, http.StatusOK, res)
	return nil
}

// installError maps verification failures to 422 with the trust error's
// class: the caller is an authenticated local administrator who needs to
// know why the bundle was refused (the server learns it too).
func installError(err error) error {
	switch {
	case errors.Is(err, agent.ErrInProgress), errors.Is(err, agent.ErrNothingToInstall), errors.Is(err, agent.ErrReboot),
		errors.Is(err, agent.ErrRestricted):
		return err
	case errors.Is(err, agent.ErrUpdateFailed), isTrust(err):
		return errorf(http.StatusUnprocessableEntity, "bundle refused: %v", err)
	}
	return err
}

func isTrust(err error) bool {
	for _, t := range []error{trust.ErrExpired, trust.ErrRollback, trust.ErrThreshold, trust.ErrMismatch,
		trust.ErrNotFound, trust.ErrNoInstruction, trust.ErrRevoked, trust.ErrWrongHardware, trust.ErrWrongChannel,
		trust.ErrWrongDevice, trust.ErrStaleNonce, trust.ErrTooLong, trust.ErrDecrypt, trust.ErrInvalid} {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

func (s *Server) openBundle(w http.ResponseWriter, r *http.Request, c Cred) (*bundle.Bundle, func(), error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		var req InstallRequest
		if err := decodeJSON(w, r, &req); err != nil {
			return nil, nil, err
		}
		if c.UID != 0 {
			return nil, nil, errorf(http.StatusForbidden, "only root may name a bundle file; send its bytes instead")
		}
		if !filepath.IsAbs(req.Path) {
			return nil, nil, errorf(http.StatusBadRequest, "path must be absolute")
		}
		b, err := bundle.Open(req.Path)
		if err != nil {
			return nil, nil, errorf(http.StatusUnprocessableEntity, "bundle: %v", err)
		}
		return b, func() { b.Close() }, nil
	}
	return s.receiveBundle(w, r)
}

// receiveBundle stores the request body in WorkDir (mode 0600, at most
// MaxBundle bytes) and opens it.
func (s *Server) receiveBundle(w http.ResponseWriter, r *http.Request) (*bundle.Bundle, func(), error) {
	if s.cfg.WorkDir == "" {
		return nil, nil, errorf(http.StatusConflict, "no work directory for uploaded bundles; root may name the file instead")
	}
	if err := os.MkdirAll(s.cfg.WorkDir, 0o700); err != nil {
		return nil, nil, err
	}
	f, err := os.CreateTemp(s.cfg.WorkDir, "bundle-*.tar")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	n, err := io.Copy(f, http.MaxBytesReader(w, r.Body, s.cfg.MaxBundle))
	if err != nil {
		cleanup()
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, nil, errorf(http.StatusRequestEntityTooLarge, "bundle larger than %d bytes", s.cfg.MaxBundle)
		}
		return nil, nil, fmt.Errorf("receive bundle: %w", err)
	}
	b, err := bundle.Read(f, n)
	if err != nil {
		cleanup()
		return nil, nil, errorf(http.StatusUnprocessableEntity, "bundle: %v", err)
	}
	return b, cleanup, nil
}
