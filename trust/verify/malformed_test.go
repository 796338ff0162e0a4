package verify_test

import (
	"context"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// go-tuf dereferences null JSON objects (a target, a meta entry) and
// panics; the verifier turns that into trust.ErrInvalid instead of
// crashing the agent (EN 303 645 5.13-1).
func TestMalformedMetadata(t *testing.T) {
	const nullTarget = `{"signed":{"_type":"targets","version":2,"expires":"2040-01-01T00:00:00Z","targets":{"x":null}},"signatures":[]}`
	t.Run("director document", func(t *testing.T) {
		f := newFixture(t)
		f.refresh()
		_, err := f.v.CheckDirector(context.Background(), []byte(nullTarget), f.nonce())
		wantErr(t, err, trust.ErrInvalid)
	})
	t.Run("image targets", func(t *testing.T) {
		f := newFixtureWith(t, trusttest.Options{}) // snapshot pins the version only
		f.img.SetFile(trusttest.RolePath(metadata.TARGETS, 2), []byte(nullTarget))
		wantErr(t, refreshErr(f), trust.ErrInvalid)
	})
	t.Run("floor for a malformed hardware ID", func(t *testing.T) {
		f := newFixture(t)
		f.img.SetFloors(map[string]uint64{"no spaces allowed": 1})
		f.img.Publish()
		wantErr(t, refreshErr(f), trust.ErrInvalid)
	})
	t.Run("bad nonce argument", func(t *testing.T) {
		f := newFixture(t)
		f.refresh()
		_, err := f.v.CheckDirector(context.Background(), f.dir.Instruct(f.img, f.dev, "", release), "")
		wantErr(t, err, trust.ErrInvalid)
	})
}
