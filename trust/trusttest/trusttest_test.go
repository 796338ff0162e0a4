package trusttest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// goTUFDownload runs go-tuf's own client against a served repository: an
// independent check that what the simulator publishes is valid TUF.
func goTUFDownload(t *testing.T, r *trusttest.Repo, base, name string) []byte {
	t.Helper()
	cfg, err := config.New(base+"/metadata", r.TrustedRoot())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg.LocalMetadataDir, cfg.LocalTargetsDir, cfg.RemoteTargetsURL = dir, dir, base+"/targets"
	up, err := updater.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	up.UnsafeSetRefTime(r.Now())
	if err := up.Refresh(); err != nil {
		t.Fatalf("go-tuf refresh: %v", err)
	}
	info, err := up.GetTargetInfo(name)
	if err != nil {
		t.Fatal(err)
	}
	_, data, err := up.DownloadTarget(info, filepath.Join(dir, "payload"), "")
	if err != nil {
		t.Fatalf("go-tuf download: %v", err)
	}
	return data
}

func TestGoTUFAcceptsPublishedRepository(t *testing.T) {
	for _, opt := range []trusttest.Options{
		{},
		{Threshold: 3, KeyType: "ecdsa", MetaHashes: true, TargetHashes: []string{"sha256", "sha512"}},
		{Channel: trusttest.NoChannel},
	} {
		r := trusttest.NewRepo(t, opt)
		data := []byte("payload")
		r.AddTarget("a/b.img", data, &trust.TargetCustom{HardwareIDs: []string{"hw"}, Component: "c",
			ReleaseCounter: 1, Channel: trust.ChannelRelease})
		r.Publish()
		for range 3 { // rotations signed by old and new root keys
			for _, role := range metadata.TOP_LEVEL_ROLE_NAMES {
				r.RotateKeys(role)
			}
			r.PublishRoot()
		}
		r.Publish()
		if got := goTUFDownload(t, r, r.Serve(), "a/b.img"); !bytes.Equal(got, data) {
			t.Fatalf("%+v: go-tuf downloaded %q", opt, got)
		}
	}
}

func TestFetcher(t *testing.T) {
	r := trusttest.NewRepo(t, trusttest.Options{})
	ctx := context.Background()
	if _, err := r.Fetch(ctx, r.MetadataURL()+"/2.root.json", 1<<20); !errorsIs(err, trust.ErrNotFound) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := r.Fetch(ctx, r.MetadataURL()+"/1.root.json", 10); !errorsIs(err, trust.ErrTooLong) {
		t.Fatalf("oversized file: %v", err)
	}
	tf := r.AddTarget("x y.img", []byte("0123456789"), nil)
	u := r.TargetsURL() + "/" + trusttest.TargetPath("x y.img", tf.Hashes["sha256"])[len("targets/"):]
	rc, err := trusttest.Mux{trusttest.NewDirector(t, trusttest.Options{}), r}.Open(ctx, u, 4)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(rc); string(got) != "456789" {
		t.Fatalf("Open at 4: %q", got)
	}
	if got := r.Requests(); len(got) != 3 {
		t.Fatalf("requests %v", got)
	}
}

func errorsIs(err, target error) bool { return err != nil && errors.Is(err, target) }
