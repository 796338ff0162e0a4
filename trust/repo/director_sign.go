package repo

import (
	"bytes"
	"fmt"
	"time"
	"unicode"

	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// DirectorTarget is one entry of a device's instruction: the image
// repository's length and hashes for the target, and the must-match fields
// the device compares with the image repository (trust.Agree).
type DirectorTarget struct {
	Name   string
	Length int64
	Hashes metadata.Hashes
	Custom trust.DirectorCustom
}

// DirectorTargetFor builds the instruction for a device of hardware hw to
// install image target name, copying length, hashes and the must-match
// fields from the image repository's entry. wrappedKey is the release's
// content key wrapped to the device (nil for plaintext releases).
func DirectorTargetFor(name string, image *metadata.TargetFiles, hw string, wrappedKey []byte) (DirectorTarget, error) {
	if image == nil {
		return DirectorTarget{}, fmt.Errorf("%w: %q", trust.ErrNotFound, name)
	}
	c, err := trust.ParseTargetCustom(image.Custom)
	if err != nil {
		return DirectorTarget{}, err
	}
	if !c.FitsHardware(hw) {
		return DirectorTarget{}, fmt.Errorf("%w: %q is signed for %v, not %s", trust.ErrWrongHardware, name, c.HardwareIDs, hw)
	}
	if (c.Encryption != "") != (len(wrappedKey) > 0) {
		return DirectorTarget{}, fmt.Errorf("%w: %q: a wrapped key goes with, and only with, an encrypted release", trust.ErrInvalid, name)
	}
	hashes := metadata.Hashes{}
	for alg, h := range image.Hashes {
		hashes[alg] = bytes.Clone(h)
	}
	return DirectorTarget{
		Name:   name,
		Length: image.Length,
		Hashes: hashes,
		Custom: trust.DirectorCustom{HardwareID: hw, Component: c.Component, ReleaseCounter: c.ReleaseCounter, Channel: c.Channel, WrappedKey: bytes.Clone(wrappedKey)},
	}, nil
}

// SignTargets signs a director targets document for one device and one
// check-in: version (the server's per-device counter, so a device can
// refuse an older instruction), expiry, the device ID and the nonce the
// device sent (trust.SetDirectorInfo), and the targets. It does no I/O and
// is safe for concurrent use.
func (d *Director) SignTargets(info trust.DirectorInfo, version int64, expires time.Time, targets []DirectorTarget) ([]byte, error) {
	if err := checkDirectorRequest(info, version, expires, len(targets)); err != nil {
		return nil, err
	}
	m := &targetsMeta{Signed: metadata.TargetsType{
		Type:        roleTargets,
		SpecVersion: metadata.SPECIFICATION_VERSION,
		Version:     version,
		Expires:     expires.UTC().Truncate(time.Second),
		Targets:     make(map[string]*metadata.TargetFiles, len(targets)),
	}}
	for _, t := range targets {
		tf, err := d.directorTargetFile(t, m.Signed.Targets)
		if err != nil {
			return nil, err
		}
		m.Signed.Targets[t.Name] = tf
	}
	trust.SetDirectorInfo(&m.Signed, info)
	d.mu.RLock()
	signer := d.signer
	d.mu.RUnlock()
	if _, err := m.Sign(signer); err != nil {
		return nil, fmt.Errorf("sign director targets: %w", err)
	}
	return m.ToBytes(false)
}

func checkDirectorRequest(info trust.DirectorInfo, version int64, expires time.Time, n int) error {
	if err := trust.ValidateID("device ID", info.DeviceID); err != nil {
		return err
	}
	if info.Nonce == "" || len(info.Nonce) > trust.MaxNonceLen {
		return fmt.Errorf("%w: nonce must be 1-%d bytes", trust.ErrInvalid, trust.MaxNonceLen)
	}
	for _, r := range info.Nonce {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return fmt.Errorf("%w: nonce must be printable ASCII", trust.ErrInvalid)
		}
	}
	if version < 1 || version > maxVersion {
		return fmt.Errorf("%w: director version %d", trust.ErrInvalid, version)
	}
	if expires.IsZero() {
		return fmt.Errorf("%w: director targets need an expiry", trust.ErrInvalid)
	}
	if n > MaxDirectorTargets {
		return fmt.Errorf("%w: more than %d director targets", trust.ErrInvalid, MaxDirectorTargets)
	}
	return nil
}

func (d *Director) directorTargetFile(t DirectorTarget, have map[string]*metadata.TargetFiles) (*metadata.TargetFiles, error) {
	if err := ValidateTargetName(t.Name); err != nil {
		return nil, err
	}
	if have[t.Name] != nil {
		return nil, fmt.Errorf("%w: director target %q twice", ErrDuplicate, t.Name)
	}
	if t.Length <= 0 || len(t.Hashes["sha256"]) != 32 {
		return nil, fmt.Errorf("%w: director target %q needs a length and a sha256", trust.ErrInvalid, t.Name)
	}
	for alg, h := range t.Hashes {
		if !(alg == "sha256" || alg == "sha512" && len(h) == 64) {
			return nil, fmt.Errorf("%w: director target %q: hash %q", trust.ErrInvalid, t.Name, alg)
		}
	}
	if err := t.Custom.Validate(); err != nil {
		return nil, fmt.Errorf("director target %q: %w", t.Name, err)
	}
	if t.Custom.Channel != d.cfg.Channel {
		return nil, fmt.Errorf("%w: director target %q is for channel %q, director serves %q", trust.ErrWrongChannel, t.Name, t.Custom.Channel, d.cfg.Channel)
	}
	return &metadata.TargetFiles{Length: t.Length, Hashes: t.Hashes, Custom: t.Custom.Raw(), Path: t.Name}, nil
}
