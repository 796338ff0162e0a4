package repo_test

import (
	"bytes"
	"crypto"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

type directorFixture struct {
	dir      string
	d        *repo.Director
	rootKey  crypto.Signer
	targets  crypto.Signer
	imageTgt *metadata.TargetFiles
}

func newDirector(tb testing.TB) *directorFixture {
	tb.Helper()
	f := &directorFixture{dir: filepath.Join(tb.TempDir(), "director"), rootKey: edKey(51), targets: edKey(52)}
	d, err := repo.InitDirector(f.dir, testNow, repo.DirectorOptions{Channel: trust.ChannelRelease, RootKeys: signers(f.rootKey), Targets: f.targets})
	must(tb, err)
	f.d = d
	c := custom("rootfs", 7, "board-a", "board-b")
	f.imageTgt = &metadata.TargetFiles{Length: 5, Hashes: metadata.Hashes{"sha256": bytes.Repeat([]byte{1}, 32), "sha512": bytes.Repeat([]byte{2}, 64)}, Custom: c.Raw(), Path: "rootfs-7"}
	return f
}

func (f *directorFixture) sign(tb testing.TB, info trust.DirectorInfo, dts ...repo.DirectorTarget) ([]byte, error) {
	tb.Helper()
	return f.d.SignTargets(info, 3, testNow.Add(time.Hour), dts)
}

// The director document verifies under the director root, is bound to the
// device and its nonce, and agrees with the image repository (trust.Agree).
func TestDirectorSignTargets(t *testing.T) {
	f := newDirector(t)
	dt, err := repo.DirectorTargetFor("rootfs-7", f.imageTgt, "board-b", nil)
	must(t, err)
	info := trust.DirectorInfo{DeviceID: "dev-0001", Nonce: "3q2+7w=="}
	raw, err := f.sign(t, info, dt)
	must(t, err)

	root, err := new(metadata.Metadata[metadata.RootType]).FromBytes(f.d.Root())
	must(t, err)
	doc, err := new(metadata.Metadata[metadata.TargetsType]).FromBytes(raw)
	must(t, err)
	must(t, root.VerifyDelegate("targets", doc))
	if _, ok := root.Signed.Roles["snapshot"]; ok {
		t.Fatal("director root has a snapshot role")
	}
	got, err := trust.ReadDirectorInfo(&doc.Signed)
	must(t, err)
	if got != info || doc.Signed.Version != 3 {
		t.Fatalf("bound to %+v version %d", got, doc.Signed.Version)
	}
	tf := doc.Signed.Targets["rootfs-7"]
	dc, err := trust.ParseDirectorCustom(tf.Custom)
	must(t, err)
	dev := trust.Device{ID: "dev-0001", HardwareID: "board-b", Channel: trust.ChannelRelease, Installed: map[string]uint64{"rootfs": 6}}
	if _, err := trust.Agree(dev, tf, dc, f.imageTgt, nil); err != nil {
		t.Fatalf("director and image disagree: %v", err)
	}
}

func TestDirectorRefusals(t *testing.T) {
	f := newDirector(t)
	good, err := repo.DirectorTargetFor("rootfs-7", f.imageTgt, "board-a", nil)
	must(t, err)
	info := trust.DirectorInfo{DeviceID: "dev-1", Nonce: "n"}
	dev := good
	dev.Custom.Channel = trust.ChannelDev
	noHash := good
	noHash.Hashes = metadata.Hashes{"md5": bytes.Repeat([]byte{1}, 16), "sha256": good.Hashes["sha256"]}
	badName := good
	badName.Name = "../x"
	many := make([]repo.DirectorTarget, repo.MaxDirectorTargets+1)
	for i := range many {
		many[i] = good
		many[i].Name = fmt.Sprintf("t%d", i)
	}
	tests := []struct {
		name string
		info trust.DirectorInfo
		dts  []repo.DirectorTarget
		want error
	}{
		{"dev target from release director", info, []repo.DirectorTarget{dev}, trust.ErrWrongChannel},
		{"no nonce", trust.DirectorInfo{DeviceID: "dev-1"}, nil, trust.ErrInvalid},
		{"long nonce", trust.DirectorInfo{DeviceID: "dev-1", Nonce: strings.Repeat("n", 129)}, nil, trust.ErrInvalid},
		{"control char in nonce", trust.DirectorInfo{DeviceID: "dev-1", Nonce: "a\nb"}, nil, trust.ErrInvalid},
		{"bad device ID", trust.DirectorInfo{DeviceID: "dev 1", Nonce: "n"}, nil, trust.ErrInvalid},
		{"unknown hash", info, []repo.DirectorTarget{noHash}, trust.ErrInvalid},
		{"unsafe name", info, []repo.DirectorTarget{badName}, trust.ErrInvalid},
		{"duplicate", info, []repo.DirectorTarget{good, good}, repo.ErrDuplicate},
		{"too many", info, many, trust.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.sign(t, tt.info, tt.dts...)
			wantErr(t, err, tt.want)
		})
	}
	_, err = repo.DirectorTargetFor("rootfs-7", f.imageTgt, "board-z", nil)
	wantErr(t, err, trust.ErrWrongHardware)
	_, err = repo.DirectorTargetFor("rootfs-7", f.imageTgt, "board-a", []byte("key"))
	wantErr(t, err, trust.ErrInvalid) // a wrapped key for a plaintext release
	_, err = repo.OpenDirector(f.dir, edKey(99))
	wantErr(t, err, repo.ErrNotAuthorised)
}

// Director root rotation follows the image repository's rule: root 2 is
// verified by root 1's keys and its own, every version stays available,
// and a new online key takes over.
func TestDirectorRotateRoot(t *testing.T) {
	f := newDirector(t)
	newRoot, newTargets := ecKey(t), edKey(53)
	spec := map[string]repo.RoleSpec{
		"root":    {Keys: []repo.KeySpec{{Public: newRoot.Public()}}},
		"targets": {Keys: []repo.KeySpec{{Public: newTargets.Public()}}},
	}
	wantErr(t, f.d.RotateRoot(testNow, spec, newTargets, newRoot), trust.ErrThreshold)        // old root did not approve
	wantErr(t, f.d.RotateRoot(testNow, spec, nil, f.rootKey, newRoot), repo.ErrNotAuthorised) // online key would be orphaned
	wantErr(t, f.d.RotateRoot(testNow, spec, newTargets, edKey(98)), repo.ErrNotAuthorised)
	must(t, f.d.RotateRoot(testNow, spec, newTargets, f.rootKey, newRoot))

	d, err := repo.OpenDirector(f.dir, newTargets)
	must(t, err)
	if d.Version() != 2 {
		t.Fatalf("version %d", d.Version())
	}
	b1, err := d.RootVersion(1)
	must(t, err)
	r1, _ := new(metadata.Metadata[metadata.RootType]).FromBytes(b1)
	r2, _ := new(metadata.Metadata[metadata.RootType]).FromBytes(d.Root())
	must(t, r1.VerifyDelegate("root", r2))
	must(t, r2.VerifyDelegate("root", r2))
	_, err = d.RootVersion(3)
	wantErr(t, err, trust.ErrNotFound)

	dt, _ := repo.DirectorTargetFor("rootfs-7", f.imageTgt, "board-a", nil)
	raw, err := d.SignTargets(trust.DirectorInfo{DeviceID: "dev-1", Nonce: "n"}, 1, testNow.Add(time.Hour), []repo.DirectorTarget{dt})
	must(t, err)
	doc, _ := new(metadata.Metadata[metadata.TargetsType]).FromBytes(raw)
	must(t, r2.VerifyDelegate("targets", doc))
	if r1.VerifyDelegate("targets", doc) == nil {
		t.Fatal("document signed by the new key verifies under the old root")
	}
	_, err = repo.OpenDirector(f.dir, f.targets)
	wantErr(t, err, repo.ErrNotAuthorised)
}

// SignTargets is called from many request handlers at once (run with -race).
func TestDirectorConcurrent(t *testing.T) {
	f := newDirector(t)
	dt, _ := repo.DirectorTargetFor("rootfs-7", f.imageTgt, "board-a", nil)
	var wg sync.WaitGroup
	errs := make(chan error, 17)
	for i := range 16 {
		wg.Go(func() {
			_, err := f.d.SignTargets(trust.DirectorInfo{DeviceID: fmt.Sprintf("dev-%d", i), Nonce: "n"}, 1, testNow, []repo.DirectorTarget{dt})
			errs <- err
		})
	}
	wg.Go(func() { errs <- f.d.RotateRoot(testNow, nil, nil, f.rootKey) })
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
}

func TestInitDirectorRefusals(t *testing.T) {
	dir := t.TempDir()
	_, err := repo.InitDirector(dir, testNow, repo.DirectorOptions{Channel: trust.ChannelRelease, Targets: edKey(1)})
	wantErr(t, err, trust.ErrThreshold) // no root keys
	_, err = repo.InitDirector(dir, testNow, repo.DirectorOptions{Channel: trust.ChannelRelease, RootKeys: signers(edKey(1))})
	wantErr(t, err, trust.ErrInvalid) // no online key
	_, err = repo.InitDirector(dir, testNow, repo.DirectorOptions{Channel: trust.ChannelRelease, RootKeys: signers(edKey(1)), Targets: edKey(1)})
	wantErr(t, err, trust.ErrInvalid) // root key online
	f := newDirector(t)
	_, err = repo.InitDirector(f.dir, testNow, repo.DirectorOptions{Channel: trust.ChannelRelease, RootKeys: signers(edKey(1)), Targets: edKey(2)})
	wantErr(t, err, repo.ErrDuplicate)
}

// BenchmarkDirectorSignTargets measures per-device signing on the server's
// hot path (docs/benchmarks.md).
func BenchmarkDirectorSignTargets(b *testing.B) {
	for _, alg := range []string{"ed25519", "ecdsa-p256"} {
		b.Run(alg, func(b *testing.B) {
			f := newDirector(b)
			if alg == "ecdsa-p256" {
				f.targets = ecKey(b)
				must(b, f.d.RotateRoot(testNow, map[string]repo.RoleSpec{"targets": {Keys: []repo.KeySpec{{Public: f.targets.Public()}}}}, f.targets, f.rootKey))
			}
			dt, _ := repo.DirectorTargetFor("rootfs-7", f.imageTgt, "board-a", nil)
			info := trust.DirectorInfo{DeviceID: "dev-0001", Nonce: "0123456789abcdef0123456789abcdef"}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.d.SignTargets(info, 1, testNow, []repo.DirectorTarget{dt}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
