package verify_test

import (
	"context"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// attack is one scenario: it starts from a freshly provisioned fixture
// whose honest update succeeds (TestHonestUpdate), changes one thing, and
// returns the error of the step that must refuse it. Each scenario changes
// exactly what the named defence looks at, so removing that defence makes
// the scenario succeed and the test fail.
type attack struct {
	name string
	run  func(t *testing.T, f *fixture) error
	want error
}

func runAttacks(t *testing.T, attacks []attack) {
	t.Helper()
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			f := newFixture(t)
			wantErr(t, a.run(t, f), a.want)
		})
	}
}

func refreshErr(f *fixture) error { return f.v.RefreshImage(context.Background()) }

// Freeze attacks: an attacker replays metadata that was once valid to hide
// newer releases (CCDS UPC05: the 1-day timestamp bounds staleness;
// EN 303 645 5.3-9).
func TestFreeze(t *testing.T) {
	runAttacks(t, []attack{
		{"timestamp expired, no newer one served", func(t *testing.T, f *fixture) error {
			f.refresh()
			f.clock.Advance(trusttest.TimestampExpiry + time.Second)
			return refreshErr(f)
		}, trust.ErrExpired},
		{"snapshot expired", func(t *testing.T, f *fixture) error {
			f.img.Snapshot.Signed.Expires = f.clock.Now().Add(-time.Second)
			f.img.PublishSnapshot()
			f.img.PublishTimestamp()
			return refreshErr(f)
		}, trust.ErrExpired},
		{"targets expired", func(t *testing.T, f *fixture) error {
			f.img.Targets.Signed.Expires = f.clock.Now().Add(-time.Second)
			f.img.Publish()
			return refreshErr(f)
		}, trust.ErrExpired},
		{"root expired", func(t *testing.T, f *fixture) error {
			f.clock.Advance(trusttest.RootExpiry + time.Second)
			return refreshErr(f)
		}, trust.ErrExpired},
		{"image metadata expired since the last refresh", func(t *testing.T, f *fixture) error {
			f.refresh()
			f.clock.Advance(trusttest.TimestampExpiry + time.Second)
			nonce := f.nonce()
			md := f.dir.DirectorTargets(f.dev.ID, nonce)
			md.Signed.Expires = f.clock.Now().Add(time.Hour) // the instruction itself is fresh
			md.Signed.Targets[release] = f.dir.Instruction(f.img.Targets.Signed.Targets[release], hardware)
			_, err := f.v.CheckDirector(context.Background(), f.dir.SignTargets(md), nonce)
			return err
		}, trust.ErrExpired},
		{"director instruction without a refreshed image repository", func(t *testing.T, f *fixture) error {
			nonce := f.nonce()
			_, err := f.v.CheckDirector(context.Background(), f.dir.Instruct(f.img, f.dev, nonce, release), nonce)
			return err
		}, trust.ErrExpired},
		{"stale director nonce (replayed instruction)", func(t *testing.T, f *fixture) error {
			f.refresh()
			old := f.nonce()
			doc := f.dir.Instruct(f.img, f.dev, old, release)
			_, err := f.v.CheckDirector(context.Background(), doc, f.nonce())
			return err
		}, trust.ErrStaleNonce},
		{"director instruction expired", func(t *testing.T, f *fixture) error {
			return f.checkDoc(func(md *metadata.Metadata[metadata.TargetsType]) []byte {
				md.Signed.Expires = f.clock.Now().Add(-time.Second)
				return f.dir.SignTargets(md)
			})
		}, trust.ErrExpired},
		{"director root expired", func(t *testing.T, f *fixture) error {
			f.dir.Root.Signed.Expires = f.clock.Now().Add(-time.Second)
			f.dir.PublishRoot()
			_, err := f.check(release)
			return err
		}, trust.ErrExpired},
	})
}

// Rollback attacks: older metadata or an older release than the device
// already trusts or runs (CCDS UPC02, UPE03).
func TestRollback(t *testing.T) {
	runAttacks(t, []attack{
		{"older timestamp version", func(t *testing.T, f *fixture) error {
			old := f.img.File(trusttest.RolePath(metadata.TIMESTAMP, 0))
			f.img.Publish()
			f.refresh()
			f.img.SetFile(trusttest.RolePath(metadata.TIMESTAMP, 0), old)
			return refreshErr(f)
		}, trust.ErrRollback},
		{"timestamp names an older snapshot version", func(t *testing.T, f *fixture) error {
			f.img.Publish()
			f.refresh()
			f.img.Snapshot.Signed.Version = 0 // republished as version 1
			f.img.PublishSnapshot()
			f.img.PublishTimestamp()
			return refreshErr(f)
		}, trust.ErrRollback},
		{"snapshot names an older targets version", func(t *testing.T, f *fixture) error {
			f.img.Publish()
			f.refresh()
			f.img.Targets.Signed.Version = 0 // republished as version 1
			f.img.Publish()
			return refreshErr(f)
		}, trust.ErrRollback},
		{"root N+2 served as N+1", func(t *testing.T, f *fixture) error {
			f.img.Root.Signed.Version++
			f.img.PublishRoot() // version 3
			f.img.SetFile(trusttest.RootPath(2), f.img.File(trusttest.RootPath(3)))
			f.img.RemoveFile(trusttest.RootPath(3))
			return refreshErr(f)
		}, trust.ErrRollback},
		{"release counter below installed", func(t *testing.T, f *fixture) error {
			f.v.SetInstalled(map[string]uint64{component: 3})
			_, err := f.check(release)
			return err
		}, trust.ErrRollback},
		{"older director instruction than accepted", func(t *testing.T, f *fixture) error {
			nonce := f.nonce()
			stale := f.dir.DirectorTargets(f.dev.ID, nonce) // version 1, held back
			stale.Signed.Targets[release] = f.dir.Instruction(f.img.Targets.Signed.Targets[release], hardware)
			if _, err := f.check(release); err != nil { // version 2 accepted
				t.Fatal(err)
			}
			_, err := f.v.CheckDirector(context.Background(), f.dir.SignTargets(stale), nonce)
			return err
		}, trust.ErrRollback},
	})
}
