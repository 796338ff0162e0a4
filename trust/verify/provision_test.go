package verify_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/koshin-ota/koshin/trust/verify"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func provisionErr(t *testing.T, img, dir *trusttest.Repo, ch trust.Channel) error {
	t.Helper()
	return verify.Provision(t.TempDir(), img.TrustedRoot(), dir.TrustedRoot(), ch)
}

// Provisioning refuses roots a device must never trust (CCDS UPC04, HLC01).
func TestProvisionRefuses(t *testing.T) {
	release := trusttest.Options{}
	dev := trusttest.Options{Channel: trust.ChannelDev}
	tests := []struct {
		name     string
		img, dir func(t *testing.T) *trusttest.Repo
		channel  trust.Channel
		want     error
	}{
		{"dev image root on a release device", repoWith(dev, nil), repoWith(release, nil), trust.ChannelRelease, trust.ErrWrongChannel},
		{"dev director root on a release device", repoWith(release, nil), repoWith(dev, nil), trust.ChannelRelease, trust.ErrWrongChannel},
		{"release root on a dev device", repoWith(release, nil), repoWith(release, nil), trust.ChannelDev, trust.ErrWrongChannel},
		{"unlabelled root", repoWith(trusttest.Options{Channel: trusttest.NoChannel}, nil), repoWith(release, nil), trust.ChannelRelease, trust.ErrInvalid},
		{"root not signed by its own keys", repoWith(release, func(r *trusttest.Repo) {
			s, _ := r.NewSigner()
			r.SetFile(trusttest.RootPath(1), trusttest.Sign(t, r.Root, s))
		}), repoWith(release, nil), trust.ChannelRelease, trust.ErrThreshold},
		{"root with targets threshold 0", repoWith(release, func(r *trusttest.Repo) {
			r.Root.Signed.Roles[metadata.TARGETS].Threshold = 0
			r.SetFile(trusttest.RootPath(1), trusttest.Sign(t, r.Root, r.Signers[metadata.ROOT]...))
		}), repoWith(release, nil), trust.ChannelRelease, trust.ErrThreshold},
		{"one Ed25519 key listed twice for threshold 2", repoWith(release, func(r *trusttest.Repo) {
			listTwice(t, r, metadata.TARGETS)
			r.SetFile(trusttest.RootPath(1), trusttest.Sign(t, r.Root, r.Signers[metadata.ROOT]...))
		}), repoWith(release, nil), trust.ChannelRelease, trust.ErrThreshold},
		{"one ECDSA key listed as ecdsa and ecdsa-sha2-nistp256", repoWith(release, nil), repoWith(trusttest.Options{KeyType: "ecdsa"}, func(r *trusttest.Repo) {
			listTwice(t, r, metadata.TARGETS)
			r.SetFile(trusttest.RootPath(1), trusttest.Sign(t, r.Root, r.Signers[metadata.ROOT]...))
		}), trust.ChannelRelease, trust.ErrThreshold},
		{"not a root", repoWith(release, func(r *trusttest.Repo) {
			r.SetFile(trusttest.RootPath(1), r.File(trusttest.RolePath(metadata.TIMESTAMP, 0)))
		}), repoWith(release, nil), trust.ChannelRelease, trust.ErrInvalid},
		{"oversized root", repoWith(release, func(r *trusttest.Repo) {
			r.SetFile(trusttest.RootPath(1), bytes.Repeat([]byte(" "), 600_000))
		}), repoWith(release, nil), trust.ChannelRelease, trust.ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, provisionErr(t, tt.img(t), tt.dir(t), tt.channel), tt.want)
		})
	}
}

func repoWith(opt trusttest.Options, edit func(*trusttest.Repo)) func(t *testing.T) *trusttest.Repo {
	return func(t *testing.T) *trusttest.Repo {
		r := trusttest.NewRepo(t, opt)
		if edit != nil {
			edit(r)
		}
		return r
	}
}

// A provisioned device cannot be re-provisioned with other roots, and a
// refused provisioning writes nothing.
func TestProvisionOnce(t *testing.T) {
	f := newFixture(t)
	other := trusttest.NewRepo(t, trusttest.Options{})
	err := verify.Provision(f.stateDir, other.TrustedRoot(), f.dir.TrustedRoot(), trust.ChannelRelease)
	wantErr(t, err, verify.ErrProvisioned)
	got, _ := os.ReadFile(filepath.Join(f.stateDir, "image", "root.json"))
	if !bytes.Equal(got, f.img.TrustedRoot()) {
		t.Fatal("trusted image root changed")
	}

	dir := t.TempDir()
	dev := trusttest.NewRepo(t, trusttest.Options{Channel: trust.ChannelDev})
	if err := verify.Provision(dir, dev.TrustedRoot(), f.dir.TrustedRoot(), trust.ChannelRelease); err == nil {
		t.Fatal("dev root provisioned")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("refused provisioning left %v", entries)
	}
}

// A verifier refuses to start on state that does not match its device.
func TestNewChecksState(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.Device.Channel = trust.ChannelDev
	_, err := verify.New(cfg)
	wantErr(t, err, trust.ErrWrongChannel)

	cfg = f.config()
	cfg.Dir = t.TempDir()
	if _, err := verify.New(cfg); err == nil {
		t.Fatal("verifier opened an unprovisioned directory")
	}
	cfg = f.config()
	cfg.Now = nil
	wantErr(t, func() error { _, err := verify.New(cfg); return err }(), trust.ErrInvalid)
}
