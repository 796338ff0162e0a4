package verify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Mix-and-match: metadata from different repository states combined. The
// snapshot pins the targets file by version and, with hashes, by content
// (CCDS UPE11 integrity, EN 303 645 5.3-9).
func TestMixAndMatch(t *testing.T) {
	runAttacks(t, []attack{
		{"targets of another state under the pinned version (hash)", func(t *testing.T, f *fixture) error {
			f.img.Publish() // snapshot pins targets v3 by hash
			f.img.Targets.Signed.Version--
			f.img.RemoveTarget(release)
			f.img.PublishTargets() // a different, validly signed targets v3
			return refreshErr(f)
		}, trust.ErrMismatch},
		{"older targets served for the pinned version", func(t *testing.T, f *fixture) error {
			old := f.img.File(trusttest.RolePath(metadata.TARGETS, 2))
			f.img.Publish()
			f.img.SetFile(trusttest.RolePath(metadata.TARGETS, 3), old)
			return refreshErr(f)
		}, trust.ErrMismatch},
	})
	// Without hashes in the snapshot meta, the version inside the file
	// still gives it away.
	f := newFixtureWith(t, trusttest.Options{})
	old := f.img.File(trusttest.RolePath(metadata.TARGETS, 2))
	f.img.Publish()
	f.img.SetFile(trusttest.RolePath(metadata.TARGETS, 3), old)
	wantErr(t, refreshErr(f), trust.ErrRollback)
}

// Endless data: a repository (or man in the middle) sends more than the
// device expects (EN 303 645 5.13-1: input validated and bounded).
func TestEndlessData(t *testing.T) {
	runAttacks(t, []attack{
		{"oversized timestamp", func(t *testing.T, f *fixture) error {
			f.img.SetFile(trusttest.RolePath(metadata.TIMESTAMP, 0), bytes.Repeat([]byte(" "), 20_000))
			return refreshErr(f)
		}, trust.ErrTooLong},
		{"targets longer than the snapshot's signed length", func(t *testing.T, f *fixture) error {
			p := trusttest.RolePath(metadata.TARGETS, 2)
			f.img.SetFile(p, append(f.img.File(p), bytes.Repeat([]byte(" "), 1000)...))
			return refreshErr(f)
		}, trust.ErrTooLong},
		{"oversized root", func(t *testing.T, f *fixture) error {
			f.img.SetFile(trusttest.RootPath(2), bytes.Repeat([]byte(" "), 600_000))
			return refreshErr(f)
		}, trust.ErrTooLong},
		{"oversized director document", func(t *testing.T, f *fixture) error {
			f.refresh()
			_, err := f.v.CheckDirector(context.Background(), bytes.Repeat([]byte(" "), 300_000), f.nonce())
			return err
		}, trust.ErrTooLong},
	})
	// Without a signed length the configured limit applies.
	f := newFixtureWith(t, trusttest.Options{})
	f.limits.MaxTargetsSize = 500
	f.v = f.open()
	wantErr(t, refreshErr(f), trust.ErrTooLong)
}

// Threshold attacks: too few signatures, or one key counted twice
// (CCDS UPC07/UPC11: threshold signing must mean distinct keys).
func TestThresholds(t *testing.T) {
	t.Run("k-1 targets signatures", func(t *testing.T) {
		f := newFixtureWith(t, trusttest.Options{Threshold: 2, MetaHashes: true})
		f.img.Signers[metadata.TARGETS] = f.img.Signers[metadata.TARGETS][:1]
		f.img.Publish()
		wantErr(t, refreshErr(f), trust.ErrThreshold)
	})
	t.Run("k-1 timestamp signatures", func(t *testing.T) {
		f := newFixtureWith(t, trusttest.Options{Threshold: 2})
		f.img.Signers[metadata.TIMESTAMP] = f.img.Signers[metadata.TIMESTAMP][:1]
		f.img.PublishTimestamp()
		wantErr(t, refreshErr(f), trust.ErrThreshold)
	})
	t.Run("k-1 root signatures on a rotation", func(t *testing.T) {
		f := newFixtureWith(t, trusttest.Options{Threshold: 2})
		f.img.Signers[metadata.ROOT] = f.img.Signers[metadata.ROOT][:1]
		f.img.PublishRoot()
		wantErr(t, refreshErr(f), trust.ErrThreshold)
	})
	t.Run("director signed by an unlisted key", func(t *testing.T) {
		f := newFixture(t)
		wantErr(t, f.checkDoc(func(md *metadata.Metadata[metadata.TargetsType]) []byte {
			s, _ := f.dir.NewSigner()
			return trusttest.Sign(t, md, s)
		}), trust.ErrThreshold)
	})
	t.Run("director signature over other content", func(t *testing.T) {
		f := newFixture(t)
		wantErr(t, f.checkDoc(func(md *metadata.Metadata[metadata.TargetsType]) []byte {
			f.dir.SignTargets(md)
			md.Signed.Targets[release].Length++ // changed after signing
			b, err := md.ToBytes(false)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}), trust.ErrThreshold)
	})
	t.Run("one key listed twice, rotated in", func(t *testing.T) {
		f := newFixture(t)
		listTwice(t, f.img, metadata.TARGETS)
		f.img.PublishRoot()
		wantErr(t, refreshErr(f), trust.ErrThreshold)
	})
	t.Run("threshold 0, rotated in", func(t *testing.T) {
		f := newFixture(t)
		f.img.Root.Signed.Roles[metadata.SNAPSHOT].Threshold = 0
		f.img.PublishRoot()
		wantErr(t, refreshErr(f), trust.ErrThreshold)
	})
}

// listTwice lists role's key a second time under another key ID (the same
// Ed25519 key with a different scheme string, or an ECDSA key as "ecdsa"
// next to "ecdsa-sha2-nistp256"), raises the threshold to 2 and signs the
// role's metadata under both IDs: one key posing as two.
func listTwice(t *testing.T, r *trusttest.Repo, role string) (alias string) {
	t.Helper()
	id := r.Root.Signed.Roles[role].KeyIDs[0]
	k := *r.Root.Signed.Keys[id]
	var twin metadata.Key
	raw, _ := json.Marshal(k)
	if err := json.Unmarshal(raw, &twin); err != nil {
		t.Fatal(err)
	}
	if twin.Type == metadata.KeyTypeECDSA_SHA2_P256 {
		twin.Type = metadata.KeyTypeECDSA_SHA2_P256_COMPAT
	} else {
		twin.Scheme += "-alias"
	}
	alias, err := twin.ID()
	if err != nil || alias == id {
		t.Fatalf("alias key ID %q (err %v) must differ from %q", alias, err, id)
	}
	r.Root.Signed.Keys[alias] = &twin
	r.Root.Signed.Roles[role].KeyIDs = append(r.Root.Signed.Roles[role].KeyIDs, alias)
	r.Root.Signed.Roles[role].Threshold = 2
	return alias
}

// Compromise of one repository alone installs nothing (Uptane; CCDS UPE04:
// only the authorised instruction executes an update, UPE11 authority).
func TestSingleRepositoryCompromise(t *testing.T) {
	runAttacks(t, []attack{
		{"director names a target the image repository lacks", func(t *testing.T, f *fixture) error {
			return f.checkDoc(func(md *metadata.Metadata[metadata.TargetsType]) []byte {
				evil := f.dir.Instruction(f.img.Targets.Signed.Targets[release], hardware)
				evil.Path = "evil.img"
				md.Signed.Targets["evil.img"] = evil
				return f.dir.SignTargets(md)
			})
		}, trust.ErrNotFound},
		{"director names other content under a released name", func(t *testing.T, f *fixture) error {
			return f.checkDoc(func(md *metadata.Metadata[metadata.TargetsType]) []byte {
				md.Signed.Targets[release].Hashes["sha256"][0] ^= 1
				return f.dir.SignTargets(md)
			})
		}, trust.ErrMismatch},
		{"director claims another length", func(t *testing.T, f *fixture) error {
			return f.checkDoc(func(md *metadata.Metadata[metadata.TargetsType]) []byte {
				md.Signed.Targets[release].Length += 10
				return f.dir.SignTargets(md)
			})
		}, trust.ErrMismatch},
		{"image-only: signed target without instruction", func(t *testing.T, f *fixture) error {
			f.addRelease("evil.img", 9)
			f.img.Publish()
			if _, err := f.check(release); err != nil {
				t.Fatal(err)
			}
			_, err := f.v.Lookup("evil.img")
			return err
		}, trust.ErrNoInstruction},
	})
}

// Targets that do not fit the device (CCDS UPE11 eligibility, UPC04 for
// the channel).
func TestWrongTarget(t *testing.T) {
	runAttacks(t, []attack{
		{"image target for other hardware", func(t *testing.T, f *fixture) error {
			f.addRelease(release, 2, func(c *trust.TargetCustom) { c.HardwareIDs = []string{"board-b"} })
			f.img.Publish()
			_, err := f.check(release)
			return err
		}, trust.ErrWrongHardware},
		{"director assigns another hardware's instruction", func(t *testing.T, f *fixture) error {
			return f.checkDoc(func(md *metadata.Metadata[metadata.TargetsType]) []byte {
				md.Signed.Targets[release] = f.dir.Instruction(f.img.Targets.Signed.Targets[release], "board-b")
				return f.dir.SignTargets(md)
			})
		}, trust.ErrWrongHardware},
		{"dev-channel target to a release device", func(t *testing.T, f *fixture) error {
			f.addRelease(release, 2, func(c *trust.TargetCustom) { c.Channel = trust.ChannelDev })
			f.img.Publish()
			_, err := f.check(release)
			return err
		}, trust.ErrWrongChannel},
		{"instruction signed for another device", func(t *testing.T, f *fixture) error {
			f.refresh()
			other := f.dev
			other.ID = "dev-0002"
			nonce := f.nonce()
			_, err := f.v.CheckDirector(context.Background(), f.dir.Instruct(f.img, other, nonce, release), nonce)
			return err
		}, trust.ErrWrongDevice},
		{"director and image disagree on the release counter", func(t *testing.T, f *fixture) error {
			return f.checkDoc(func(md *metadata.Metadata[metadata.TargetsType]) []byte {
				dc, _ := trust.ParseDirectorCustom(md.Signed.Targets[release].Custom)
				dc.ReleaseCounter = 7
				md.Signed.Targets[release].Custom = dc.Raw()
				return f.dir.SignTargets(md)
			})
		}, trust.ErrMismatch},
	})
}

// Revocation: a bad release is removed and the floor raised (CCDS UPC05).
func TestRevokedRelease(t *testing.T) {
	runAttacks(t, []attack{
		{"removed target", func(t *testing.T, f *fixture) error {
			nonce := f.nonce() // instruction issued just before the revocation
			instr := f.dir.Instruct(f.img, f.dev, nonce, release)
			f.img.RemoveTarget(release)
			f.img.Publish()
			f.refresh()
			_, err := f.v.CheckDirector(context.Background(), instr, nonce)
			return err
		}, trust.ErrNotFound},
		{"below the signed floor", func(t *testing.T, f *fixture) error {
			f.img.SetFloors(map[string]uint64{trust.FloorKey(hardware, component): 3})
			f.img.Publish()
			_, err := f.check(release)
			return err
		}, trust.ErrRevoked},
	})
}
