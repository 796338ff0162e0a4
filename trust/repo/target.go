package repo

import (
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// AddTarget streams payload once into the payload store (O(1) memory, any
// size), and stages it as target name with the signed custom fields. It
// refuses, before reading the payload:
//   - invalid custom fields or an unsafe name (trust.ErrInvalid);
//   - a channel other than the repository's (trust.ErrWrongChannel; CCDS
//     UPC03/UPC04);
//   - a name already present (ErrDuplicate);
//   - a release counter not above every existing target of the same
//     component sharing a hardware ID, or below a hardware ID's revocation
//     floor (trust.ErrRollback; CCDS UPC02).
//
// For an encrypted release, payload is the ciphertext and custom carries
// the plaintext length and hash.
func (r *Repo) AddTarget(name string, payload io.Reader, custom trust.TargetCustom, progress func(n int64)) error {
	if err := r.checkNewTarget(&r.targetsView().Signed, name, &custom); err != nil {
		return err
	}
	info, err := r.storePayload(payload, progress)
	if err != nil {
		return err
	}
	if info.length == 0 {
		return fmt.Errorf("%w: payload of %s is empty", trust.ErrInvalid, name)
	}
	tf := &metadata.TargetFiles{
		Length: info.length,
		Hashes: metadata.Hashes{"sha256": info.sha256},
		Custom: custom.Raw(),
		Path:   name,
	}
	return r.editTargets(func(t *metadata.TargetsType) error {
		if err := r.checkNewTarget(t, name, &custom); err != nil {
			return err
		}
		t.Targets[name] = tf
		return nil
	})
}

// CheckTarget runs AddTarget's refusals without a payload, so a caller can
// fail fast before expensive work such as encrypting the payload.
func (r *Repo) CheckTarget(name string, custom trust.TargetCustom) error {
	return r.checkNewTarget(&r.targetsView().Signed, name, &custom)
}

// targetsView is what the next signed targets will list: the staged
// targets, else the signed ones.
func (r *Repo) targetsView() *targetsMeta {
	if r.sTarget != nil {
		return r.sTarget
	}
	return r.signed.targets
}

func (r *Repo) checkNewTarget(t *metadata.TargetsType, name string, c *trust.TargetCustom) error {
	if err := ValidateTargetName(name); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if c.ReleaseCounter > trust.MaxReleaseCounter {
		return fmt.Errorf("%w: release_counter above %d", trust.ErrInvalid, uint64(trust.MaxReleaseCounter))
	}
	if c.Channel != r.cfg.Channel {
		return fmt.Errorf("%w: target is for channel %q, repository serves %q", trust.ErrWrongChannel, c.Channel, r.cfg.Channel)
	}
	if _, ok := t.Targets[name]; ok {
		return fmt.Errorf("%w: target %q", ErrDuplicate, name)
	}
	if len(t.Targets) >= maxTargets {
		return fmt.Errorf("%w: repository already holds %d targets", trust.ErrInvalid, maxTargets)
	}
	return checkCounter(t, c)
}

// checkCounter enforces monotonic release counters per component and
// hardware ID, and the floors revocation raised.
func checkCounter(t *metadata.TargetsType, c *trust.TargetCustom) error {
	floors, err := trust.Floors(t)
	if err != nil {
		return err
	}
	for _, hw := range c.HardwareIDs {
		if f := floors[trust.FloorKey(hw, c.Component)]; c.ReleaseCounter < f {
			return fmt.Errorf("%w: release counter %d is below the floor %d for %s on %s (raised by a revocation)", trust.ErrRollback, c.ReleaseCounter, f, c.Component, hw)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(t.Targets)) {
		old, err := trust.ParseTargetCustom(t.Targets[name].Custom)
		if err != nil {
			return fmt.Errorf("target %q: %w", name, err)
		}
		if old.Component == c.Component && overlaps(old.HardwareIDs, c.HardwareIDs) && old.ReleaseCounter >= c.ReleaseCounter {
			return fmt.Errorf("%w: release counter %d is not above %d of %q (component %s)", trust.ErrRollback, c.ReleaseCounter, old.ReleaseCounter, name, c.Component)
		}
	}
	return nil
}

func overlaps(a, b []string) bool {
	return slices.ContainsFunc(a, func(s string) bool { return slices.Contains(b, s) })
}

// Revoke removes target name and, if it was ever signed, raises the signed
// release-counter floor of its component on each of its hardware IDs to its
// counter+1, so a
// device refuses it even from a stale mirror once it sees the new targets
// (CCDS UPC05). Floors only ever go up. A target that was staged but never
// signed is simply unstaged.
func (r *Repo) Revoke(name string) error {
	if _, ok := r.targetsView().Signed.Targets[name]; !ok {
		return fmt.Errorf("%w: target %q", ErrUnknown, name)
	}
	wasSigned := r.signed != nil && r.signed.targets.Signed.Targets[name] != nil
	return r.editTargets(func(t *metadata.TargetsType) error {
		c, err := trust.ParseTargetCustom(t.Targets[name].Custom)
		if err != nil {
			return err
		}
		delete(t.Targets, name)
		if !wasSigned {
			return nil
		}
		return raiseFloors(t, c.HardwareIDs, c.Component, c.ReleaseCounter+1)
	})
}

func raiseFloors(t *metadata.TargetsType, hardware []string, component string, floor uint64) error {
	floors, err := trust.Floors(t)
	if err != nil {
		return err
	}
	for _, hw := range hardware {
		k := trust.FloorKey(hw, component)
		floors[k] = max(floors[k], floor)
	}
	trust.SetFloors(t, floors)
	return nil
}

// TargetState says where a target stands between the signed and staged
// versions.
type TargetState string

const (
	TargetSigned  TargetState = "signed"  // in the signed targets, unchanged
	TargetAdded   TargetState = "added"   // staged, not yet signed
	TargetRemoved TargetState = "removed" // signed, revoked in the staged targets
)

// TargetInfo describes one target for listings.
type TargetInfo struct {
	Name   string
	Length int64
	SHA256 string
	Custom trust.TargetCustom
	State  TargetState
}

// Targets lists signed and staged targets, by name.
func (r *Repo) Targets() ([]TargetInfo, error) {
	var signed, staged map[string]*metadata.TargetFiles
	if r.signed != nil {
		signed = r.signed.targets.Signed.Targets
	}
	staged = r.targetsView().Signed.Targets
	names := slices.Sorted(maps.Keys(signed))
	for n := range staged {
		if signed[n] == nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	out := make([]TargetInfo, 0, len(names))
	for _, n := range names {
		ti, err := targetInfo(n, signed[n], staged[n])
		if err != nil {
			return nil, err
		}
		out = append(out, ti)
	}
	return out, nil
}

func targetInfo(name string, signed, staged *metadata.TargetFiles) (TargetInfo, error) {
	tf, state := staged, TargetSigned
	switch {
	case signed == nil:
		state = TargetAdded
	case staged == nil:
		tf, state = signed, TargetRemoved
	}
	c, err := trust.ParseTargetCustom(tf.Custom)
	if err != nil {
		return TargetInfo{}, fmt.Errorf("target %q: %w", name, err)
	}
	return TargetInfo{Name: name, Length: tf.Length, SHA256: hex.EncodeToString(tf.Hashes["sha256"]), Custom: *c, State: state}, nil
}

// Floors returns the release-counter floors (keyed by trust.FloorKey) the next signed
// targets will carry.
func (r *Repo) Floors() (map[string]uint64, error) {
	return trust.Floors(&r.targetsView().Signed)
}

// checkTargetsContent validates targets metadata read from disk or about to
// be signed: safe names, both hashes, valid custom fields in this
// repository's channel, valid floors, no delegations (koshin does not use
// them, and refusing keeps them from slipping in unreviewed).
func checkTargetsContent(t *metadata.TargetsType, channel trust.Channel) error {
	if err := checkTargetsStructure(t); err != nil {
		return err
	}
	for name, tf := range t.Targets {
		if err := checkTargetChannel(name, tf, channel); err != nil {
			return err
		}
	}
	return nil
}

// checkTargetsStructure is checkTargetsContent without the channel.
func checkTargetsStructure(t *metadata.TargetsType) error {
	if t.Type != roleTargets || t.Version < 1 || t.Version > maxVersion || t.Delegations != nil {
		return fmt.Errorf("%w: targets must have _type targets, version >= 1 and no delegations", trust.ErrInvalid)
	}
	if len(t.Targets) > maxTargets {
		return fmt.Errorf("%w: more than %d targets", trust.ErrInvalid, maxTargets)
	}
	for name, tf := range t.Targets {
		if err := checkTargetFile(name, tf); err != nil {
			return err
		}
	}
	_, err := trust.Floors(t)
	return err
}

func checkTargetFile(name string, tf *metadata.TargetFiles) error {
	if err := ValidateTargetName(name); err != nil {
		return err
	}
	if tf == nil || tf.Length <= 0 || len(tf.Hashes["sha256"]) != 32 {
		return fmt.Errorf("%w: target %q needs a length and a sha256 hash", trust.ErrInvalid, name)
	}
	if h, ok := tf.Hashes["sha512"]; ok && len(h) != 64 {
		return fmt.Errorf("%w: target %q: sha512 is %d bytes", trust.ErrInvalid, name, len(h))
	}
	_, err := trust.ParseTargetCustom(tf.Custom)
	if err != nil {
		return fmt.Errorf("target %q: %w", name, err)
	}
	return nil
}

func checkTargetChannel(name string, tf *metadata.TargetFiles, channel trust.Channel) error {
	c, err := trust.ParseTargetCustom(tf.Custom)
	if err != nil {
		return fmt.Errorf("target %q: %w", name, err)
	}
	if c.Channel != channel {
		return fmt.Errorf("%w: target %q is for channel %q, repository serves %q", trust.ErrWrongChannel, name, c.Channel, channel)
	}
	return nil
}

// payloadName is the published file name of a target (TUF consistent
// snapshot: HASH.NAME).
func payloadName(name string, tf *metadata.TargetFiles) string {
	return hex.EncodeToString(tf.Hashes["sha256"]) + "." + name
}

// SignedTarget returns the signed entry of target name, for building
// director instructions (DirectorTargetFor) from the image repository.
func (r *Repo) SignedTarget(name string) (*metadata.TargetFiles, error) {
	if r.signed == nil {
		return nil, ErrNotCommitted
	}
	tf := r.signed.targets.Signed.Targets[name]
	if tf == nil {
		return nil, fmt.Errorf("%w: %q", trust.ErrNotFound, name)
	}
	return tf, nil
}
