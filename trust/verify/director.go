package verify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"

	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// CheckDirector verifies the director targets document a check-in returned
// for this device and, if every check passes, returns and remembers the
// plan it authorises. nonce is the nonce the device sent with that check-in.
//
// The director's root chain is refreshed first (DirectorURL/N.root.json).
// The document must be signed by a threshold of the director root's targets
// keys (trust.ErrThreshold), unexpired (trust.ErrExpired), no older than the
// last document this device accepted (trust.ErrRollback), signed for this
// device (trust.ErrWrongDevice) and echo nonce (trust.ErrStaleNonce). Every
// target it names must exist in the image repository (trust.ErrNotFound:
// a compromised director alone cannot install anything) and agree with it
// (trust.Agree). RefreshImage must have succeeded before, and its metadata
// must still be unexpired.
func (v *Verifier) CheckDirector(ctx context.Context, targetsJSON []byte, nonce string) (*Plan, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	img, err := v.freshImage()
	if err != nil {
		return nil, err
	}
	if nonce == "" || len(nonce) > trust.MaxNonceLen {
		return nil, fmt.Errorf("%w: nonce must be 1-%d bytes", trust.ErrInvalid, trust.MaxNonceLen)
	}
	root, err := v.directorRoot(ctx)
	if err != nil {
		return nil, fmt.Errorf("director root: %w", err)
	}
	doc, err := v.verifyDirector(root, targetsJSON, nonce)
	if err != nil {
		return nil, fmt.Errorf("director targets: %w", err)
	}
	plan, err := v.agree(doc, img)
	if err != nil {
		return nil, err
	}
	if err := v.director.store.write(metadata.TARGETS, targetsJSON); err != nil {
		return nil, err
	}
	v.plan = plan
	return plan.clone(), nil
}

// directorRoot walks the director's root chain and requires the final root
// to be unexpired.
func (v *Verifier) directorRoot(ctx context.Context) (*metadata.Metadata[metadata.RootType], error) {
	tm, err := v.director.open()
	if err != nil {
		return nil, err
	}
	if err := v.director.update(ctx, tm); err != nil {
		return nil, err
	}
	if tm.Root.Signed.IsExpired(tm.RefTime) {
		return nil, fmt.Errorf("%w: director root v%d expired", trust.ErrExpired, tm.Root.Signed.Version)
	}
	return tm.Root, nil
}

// verifyDirector checks everything about the document except its targets.
func (v *Verifier) verifyDirector(root *metadata.Metadata[metadata.RootType], raw []byte, nonce string) (*targetsMeta, error) {
	if int64(len(raw)) > v.cfg.Limits.MaxDirectorSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", trust.ErrTooLong, len(raw), v.cfg.Limits.MaxDirectorSize)
	}
	var doc *targetsMeta
	err := guard(func() (err error) {
		if doc, err = metadata.Targets().FromBytes(raw); err != nil {
			return fmt.Errorf("%w: %w", trust.ErrInvalid, err)
		}
		return root.VerifyDelegate(metadata.TARGETS, doc)
	})
	if err != nil {
		return nil, err
	}
	if doc.Signed.IsExpired(v.cfg.Now()) {
		return nil, fmt.Errorf("%w: expired at %s", trust.ErrExpired, doc.Signed.Expires)
	}
	if err := v.checkDirectorVersion(doc.Signed.Version); err != nil {
		return nil, err
	}
	if err := v.checkBinding(&doc.Signed, nonce); err != nil {
		return nil, err
	}
	if doc.Signed.Delegations != nil || len(doc.Signed.Targets) > v.cfg.Limits.MaxDirectorTargets {
		return nil, fmt.Errorf("%w: delegations or more than %d targets", trust.ErrInvalid, v.cfg.Limits.MaxDirectorTargets)
	}
	return doc, nil
}

// checkDirectorVersion compares with the last accepted document, persisted
// in director/targets.json. An unreadable file fails closed: resetting the
// reference would reopen replay of old instructions.
func (v *Verifier) checkDirectorVersion(version int64) error {
	if version < 1 {
		return fmt.Errorf("%w: version %d", trust.ErrInvalid, version)
	}
	data, err := v.director.store.read(metadata.TARGETS, v.cfg.Limits.MaxDirectorSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("last accepted director targets: %w", err)
	}
	var last *targetsMeta
	err = guard(func() (err error) {
		last, err = metadata.Targets().FromBytes(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("last accepted director targets: %w", err)
	}
	if version < last.Signed.Version {
		return fmt.Errorf("%w: version %d is older than accepted %d", trust.ErrRollback, version, last.Signed.Version)
	}
	return nil
}

func (v *Verifier) checkBinding(t *metadata.TargetsType, nonce string) error {
	info, err := trust.ReadDirectorInfo(t)
	if err != nil {
		return err
	}
	if info.DeviceID != v.cfg.Device.ID {
		return fmt.Errorf("%w: signed for %q, this is %q", trust.ErrWrongDevice, info.DeviceID, v.cfg.Device.ID)
	}
	if info.Nonce != nonce {
		return fmt.Errorf("%w: document echoes another check-in", trust.ErrStaleNonce)
	}
	return nil
}

// agree builds the plan: every director target must be held by the image
// repository and agree with it.
func (v *Verifier) agree(doc *targetsMeta, img *imageState) (*Plan, error) {
	dev := v.cfg.Device
	dev.Installed = v.installed
	plan := &Plan{}
	for _, name := range slices.Sorted(maps.Keys(doc.Signed.Targets)) {
		dt := doc.Signed.Targets[name]
		dc, err := trust.ParseDirectorCustom(dt.Custom)
		if err != nil {
			return nil, fmt.Errorf("director target %q: %w", name, err)
		}
		it := img.targets.Signed.Targets[name]
		ic, err := trust.Agree(dev, dt, dc, it, img.floors)
		if err != nil {
			return nil, fmt.Errorf("target %q: %w", name, err)
		}
		in, err := newInstall(name, it, v.cfg.TargetsURL, img.consistent)
		if err != nil {
			return nil, err
		}
		in.Custom, in.WrappedKey = *ic, slices.Clone(dc.WrappedKey)
		plan.Targets = append(plan.Targets, in)
	}
	return plan, nil
}
