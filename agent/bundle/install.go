package bundle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/verify"
)

// Installer installs bundles through a device's engine.
type Installer struct {
	Engine *agent.Engine
	// Device is the verifying device: its ID (the instruction must be
	// signed for it), hardware ID and channel.
	Device trust.Device
	// TrustDir is the trust core's metadata directory, the same one the
	// online verifier uses: a bundle's metadata updates the device's
	// trusted state exactly as metadata from the server would.
	TrustDir string
	Nonces   *Nonces
	// Now is the verification clock.
	Now func() time.Time
	// WriteFile, if set, replaces the trust core's metadata writes (tests).
	WriteFile func(name string, data []byte, perm os.FileMode) error
	Log       *slog.Logger
}

// Result says what an install did.
type Result struct {
	Target  string `json:"target"`
	Version string `json:"version"`
	// Reboot: the new image is armed for a trial boot and the system is
	// rebooting into it; the commit happens on the new image.
	Reboot bool `json:"reboot"`
}

// Install verifies and installs the bundle's update. Errors from
// verification wrap the trust error (trust.ErrStaleNonce, trust.ErrMismatch,
// ...); the engine has counted and reported them.
func (i *Installer) Install(ctx context.Context, b *Bundle) (Result, error) {
	director, err := b.Instruction(i.Device.ID)
	if err != nil {
		return Result{}, err
	}
	nonce, err := i.Nonces.Current()
	if err != nil {
		return Result{}, err
	}
	v, err := verify.New(verify.Config{Device: i.Device, Dir: i.TrustDir,
		ImageURL: ImageURL, DirectorURL: DirectorURL, TargetsURL: TargetsURL,
		Fetcher: b, Now: i.Now, WriteFile: i.WriteFile, Logger: i.Log})
	if err != nil {
		return Result{}, fmt.Errorf("open trusted metadata: %w", err)
	}
	cv := &acceptance{Verifier: &agent.TrustVerifier{V: v}}
	t, err := i.Engine.InstallOffline(ctx, agent.Offline{Director: director, Nonce: nonce, Verifier: cv, Fetcher: b})
	if cv.accepted {
		// The instruction has been used: the same bundle must not install
		// again (a second device reading the same stick, a replay).
		if _, rerr := i.Nonces.Rotate(); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	res := Result{Target: t.Name, Version: t.Custom.Version}
	if errors.Is(err, agent.ErrReboot) {
		res.Reboot = true
		err = nil
	}
	return res, err
}

// acceptance notes whether the verifier accepted the instruction.
type acceptance struct {
	agent.Verifier
	accepted bool
}

func (a *acceptance) Check(ctx context.Context, director []byte, nonce string, installed map[string]uint64) ([]agent.Target, error) {
	ts, err := a.Verifier.Check(ctx, director, nonce, installed)
	a.accepted = a.accepted || err == nil
	return ts, err
}
