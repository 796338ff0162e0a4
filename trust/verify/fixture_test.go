package verify_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/koshin-ota/koshin/trust/verify"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

const (
	hardware  = "board-a"
	component = "rootfs"
	release   = "fw-2.img"
)

// fixture is one provisioned release device with an image repository and
// a director that agree on one release, fw-2.img (release counter 2).
type fixture struct {
	t        testing.TB
	clock    *trusttest.Clock
	img, dir *trusttest.Repo
	dev      trust.Device
	stateDir string
	limits   verify.Limits
	v        *verify.Verifier
	nonces   int
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixtureWith(t, trusttest.Options{MetaHashes: true})
}

func newFixtureWith(t testing.TB, imgOpt trusttest.Options) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: trusttest.NewClock(trusttest.Epoch), stateDir: t.TempDir(),
		dev: trust.Device{ID: "dev-0001", HardwareID: hardware, Channel: trust.ChannelRelease,
			Installed: map[string]uint64{component: 1}}}
	f.img = trusttest.NewRepo(t, imgOpt)
	f.dir = trusttest.NewDirector(t, trusttest.Options{})
	f.addRelease(release, 2)
	f.img.Publish()
	if err := verify.Provision(f.stateDir, f.img.TrustedRoot(), f.dir.TrustedRoot(), trust.ChannelRelease); err != nil {
		t.Fatal(err)
	}
	f.v = f.open()
	return f
}

func (f *fixture) config() verify.Config {
	return verify.Config{Device: f.dev, Dir: f.stateDir,
		ImageURL: f.img.MetadataURL(), DirectorURL: f.dir.MetadataURL(), TargetsURL: f.img.TargetsURL(),
		Fetcher: trusttest.Mux{f.img, f.dir}, Now: f.clock.Now, Limits: f.limits}
}

// open starts a verifier on the device state, as after a restart.
func (f *fixture) open() *verify.Verifier {
	f.t.Helper()
	v, err := verify.New(f.config())
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

func releaseCustom(counter uint64) *trust.TargetCustom {
	return &trust.TargetCustom{HardwareIDs: []string{hardware}, Component: component,
		ReleaseCounter: counter, Version: fmt.Sprintf("1.%d.0", counter), Channel: trust.ChannelRelease}
}

func payload(name string) []byte {
	b := make([]byte, 3000)
	for i := range b {
		b[i] = name[i%len(name)] ^ byte(i)
	}
	return b
}

// addRelease adds a target to the image repository's working copy.
func (f *fixture) addRelease(name string, counter uint64, edit ...func(*trust.TargetCustom)) *metadata.TargetFiles {
	c := releaseCustom(counter)
	for _, e := range edit {
		e(c)
	}
	return f.img.AddTarget(name, payload(name), c)
}

func (f *fixture) nonce() string {
	f.nonces++
	return fmt.Sprintf("nonce-%04d", f.nonces)
}

// refresh must succeed.
func (f *fixture) refresh() {
	f.t.Helper()
	if err := f.v.RefreshImage(context.Background()); err != nil {
		f.t.Fatalf("RefreshImage: %v", err)
	}
}

// check refreshes the image repository and checks an honest instruction
// naming names.
func (f *fixture) check(names ...string) (*verify.Plan, error) {
	f.t.Helper()
	if err := f.v.RefreshImage(context.Background()); err != nil {
		return nil, err
	}
	nonce := f.nonce()
	return f.v.CheckDirector(context.Background(), f.dir.Instruct(f.img, f.dev, nonce, names...), nonce)
}

// checkDoc refreshes and checks a director document built by edit.
func (f *fixture) checkDoc(edit func(md *metadata.Metadata[metadata.TargetsType]) []byte) error {
	f.t.Helper()
	f.refresh()
	nonce := f.nonce()
	md := f.dir.DirectorTargets(f.dev.ID, nonce)
	md.Signed.Targets[release] = f.dir.Instruction(f.img.Targets.Signed.Targets[release], hardware)
	_, err := f.v.CheckDirector(context.Background(), edit(md), nonce)
	return err
}

func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}
