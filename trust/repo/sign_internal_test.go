package repo

import (
	"errors"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Targets are re-checked for the repository's channel right before anyone
// signs them (CCDS UPC03/UPC04), even if a dev target got into the staged
// targets some other way than AddTarget.
func TestSignRechecksChannel(t *testing.T) {
	dir, _ := crashRepo(t)
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Discard(roleTargets); err != nil {
		t.Fatal(err)
	}
	tf, err := r.SignedTarget("rootfs-1")
	if !errors.Is(err, trust.ErrNotFound) {
		t.Fatalf("unsigned target found: %v %v", tf, err)
	}
	if err := r.Stage(roleTargets); err != nil {
		t.Fatal(err)
	}
	c := trust.TargetCustom{HardwareIDs: []string{"board-a"}, Component: "rootfs", ReleaseCounter: 9, Channel: trust.ChannelDev}
	r.sTarget.Signed.Targets["smuggled"] = &metadata.TargetFiles{Length: 1, Hashes: metadata.Hashes{"sha256": make(metadata.HexBytes, 32), "sha512": make(metadata.HexBytes, 64)}, Custom: c.Raw()}
	key := crashKey(2)
	if err := r.Sign(roleTargets, key); !errors.Is(err, trust.ErrWrongChannel) {
		t.Fatalf("signing a dev target in a release repository: %v", err)
	}
	if _, err := r.ExportUnsigned(roleTargets); !errors.Is(err, trust.ErrWrongChannel) {
		t.Fatalf("exporting a dev target in a release repository: %v", err)
	}
}
