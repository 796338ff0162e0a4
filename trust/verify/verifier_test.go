package verify_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/koshin-ota/koshin/trust/verify"
)

// The honest path: both repositories agree, the plan names the release
// with the image repository's signed length, hashes and custom fields, and
// the payload streams through a PayloadReader (CCDS UPE11, EN 303 645
// 5.3-9/5.3-10).
func TestHonestUpdate(t *testing.T) {
	f := newFixture(t)
	plan, err := f.check(release)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Targets) != 1 {
		t.Fatalf("plan has %d targets, want 1", len(plan.Targets))
	}
	in := plan.Targets[0]
	img := f.img.Targets.Signed.Targets[release]
	want := verify.Install{Name: release, Length: img.Length, Hashes: map[string][]byte{"sha256": img.Hashes["sha256"]},
		Custom: *releaseCustom(2), URL: f.img.TargetsURL() + "/" + trusttest.TargetPath(release, img.Hashes["sha256"])[len("targets/"):]}
	if diff := cmp.Diff(want, in); diff != "" {
		t.Fatalf("install (-want +got):\n%s", diff)
	}
	got, err := f.v.Lookup(release)
	if err != nil || got.Name != release {
		t.Fatalf("Lookup = %v, %v", got, err)
	}
	rc, err := f.img.Open(context.Background(), in.URL, 0)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(verify.NewPayloadReader(rc, in, verify.PayloadOptions{}))
	if err != nil || !bytes.Equal(data, payload(release)) {
		t.Fatalf("payload: %d bytes, %v", len(data), err)
	}
}

// An empty instruction is valid and authorises nothing.
func TestEmptyInstruction(t *testing.T) {
	f := newFixture(t)
	plan, err := f.check()
	if err != nil || len(plan.Targets) != 0 {
		t.Fatalf("plan %v, err %v", plan, err)
	}
	_, err = f.v.Lookup(release)
	wantErr(t, err, trust.ErrNoInstruction)
}
