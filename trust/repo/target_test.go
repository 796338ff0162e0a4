package repo_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Every refusal of AddTarget, each checked before the payload is read.
// CCDS UPC02 (monotonic counters), UPC03/UPC04 (channel separation).
func TestAddTargetRefusals(t *testing.T) {
	f := committed(t)
	f.release(t, "rootfs-5", custom("rootfs", 5, "board-a", "board-b"))
	must(t, f.r.AddTarget("app-3", bytes.NewReader(payload("app-3")), custom("app", 3, "board-a"), nil))

	dev := custom("rootfs", 9, "board-a")
	dev.Channel = trust.ChannelDev
	bad := custom("rootfs", 9, "board-a")
	bad.SupportEnd = "soon"
	tests := []struct {
		name   string
		target string
		c      trust.TargetCustom
		want   error
	}{
		{"invalid custom", "x", bad, trust.ErrInvalid},
		{"no hardware", "x", custom("rootfs", 9), trust.ErrInvalid},
		{"counter zero", "x", custom("rootfs", 0, "board-a"), trust.ErrInvalid},
		{"counter beyond 2^53", "x", custom("rootfs", 1<<53+1, "board-a"), trust.ErrInvalid},
		{"dev target in release repository", "x", dev, trust.ErrWrongChannel},
		{"equal counter, same component, overlapping hardware", "x", custom("rootfs", 5, "board-b", "board-c"), trust.ErrRollback},
		{"lower counter", "x", custom("rootfs", 4, "board-a"), trust.ErrRollback},
		{"lower than a staged target", "x", custom("app", 2, "board-a"), trust.ErrRollback},
		{"duplicate name", "rootfs-5", custom("rootfs", 6, "board-a"), repo.ErrDuplicate},
		{"name with slash", "a/b", custom("rootfs", 6, "board-a"), trust.ErrInvalid},
		{"name dot-dot", "..", custom("rootfs", 6, "board-a"), trust.ErrInvalid},
		{"hidden name", ".x", custom("rootfs", 6, "board-a"), trust.ErrInvalid},
		{"empty name", "", custom("rootfs", 6, "board-a"), trust.ErrInvalid},
		{"long name", strings.Repeat("a", 129), custom("rootfs", 6, "board-a"), trust.ErrInvalid},
		{"name with colon", "a:b", custom("rootfs", 6, "board-a"), trust.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, f.r.AddTarget(tt.target, failReader{t}, tt.c, nil), tt.want)
		})
	}

	// Counters are per component and hardware ID: these are fine.
	must(t, f.r.AddTarget("rootfs-c", bytes.NewReader(payload("c")), custom("rootfs", 1, "board-c"), nil))
	must(t, f.r.AddTarget("boot-1", bytes.NewReader(payload("boot")), custom("bootloader", 1, "board-a"), nil))
	must(t, f.r.AddTarget("rootfs-6", bytes.NewReader(payload("6")), custom("rootfs", 6, "board-a"), nil))
}

func TestAddTargetRefusesEmptyPayload(t *testing.T) {
	f := committed(t)
	wantErr(t, f.r.AddTarget("empty", bytes.NewReader(nil), custom("rootfs", 1, "board-a"), nil), trust.ErrInvalid)
}

// AddTarget hashes the payload as it streams it into the store: the signed
// length and hashes match an independent computation, the stored copy is
// byte-identical, and progress reports a running count ending at the
// length.
func TestAddTargetStreams(t *testing.T) {
	f := committed(t)
	const n = 3<<20 + 12345
	data := make([]byte, n)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	var seen []int64
	must(t, f.r.AddTarget("big.img", io.MultiReader(bytes.NewReader(data)), custom("rootfs", 1, "board-a"), func(n int64) { seen = append(seen, n) }))

	tm := readMeta[metadata.TargetsType](t, filepath.Join(f.dir, "staged", "targets.json"))
	tf := tm.Signed.Targets["big.img"]
	s256 := sha256.Sum256(data)
	if tf.Length != n || !bytes.Equal(tf.Hashes["sha256"], s256[:]) || len(tf.Hashes) != 1 {
		t.Fatalf("target entry %d %x, want %d %x", tf.Length, tf.Hashes["sha256"], n, s256)
	}
	stored, err := os.ReadFile(filepath.Join(f.dir, "payloads", hex.EncodeToString(s256[:])))
	if err != nil || !bytes.Equal(stored, data) {
		t.Fatalf("stored payload differs (err %v)", err)
	}
	if len(seen) < 2 || seen[len(seen)-1] != n {
		t.Fatalf("progress %v, want a running count ending at %d", seen, n)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] <= seen[i-1] {
			t.Fatalf("progress not increasing: %v", seen)
		}
	}
}

// CCDS UPC05: revocation removes the target and raises the signed floor of
// its component on each of its hardware IDs to counter+1; floors never go
// down.
func TestRevokeRaisesFloors(t *testing.T) {
	f := committed(t)
	f.release(t, "rootfs-3", custom("rootfs", 3, "board-a"))
	f.release(t, "rootfs-5", custom("rootfs", 5, "board-a", "board-b"))

	must(t, f.r.Revoke("rootfs-5"))
	must(t, f.r.Revoke("rootfs-3")) // lower counter: must not lower board-a's floor
	must(t, f.r.Sign("targets", f.targets))
	f.commit(t)
	f.reopen(t)

	tm := readMeta[metadata.TargetsType](t, filepath.Join(f.dir, "signed", "4.targets.json"))
	if len(tm.Signed.Targets) != 0 {
		t.Fatalf("revoked targets still listed: %v", tm.Signed.Targets)
	}
	floors, err := trust.Floors(&tm.Signed)
	must(t, err)
	a, b := trust.FloorKey("board-a", "rootfs"), trust.FloorKey("board-b", "rootfs")
	if floors[a] != 6 || floors[b] != 6 || len(floors) != 2 {
		t.Fatalf("floors = %v, want %s:6 %s:6", floors, a, b)
	}
	// A device check agrees: counter 5 is now below the floor.
	wantErr(t, f.r.AddTarget("rootfs-5b", failReader{t}, custom("rootfs", 5, "board-b"), nil), trust.ErrRollback)
	// Another component on the same hardware is not held to the floor:
	// revoking a rootfs release must not block the application.
	must(t, f.r.AddTarget("app-2", bytes.NewReader(payload("a2")), custom("app", 2, "board-a"), nil))
	must(t, f.r.AddTarget("rootfs-6", bytes.NewReader(payload("6")), custom("rootfs", 6, "board-a"), nil))
	wantErr(t, f.r.Revoke("nonexistent"), repo.ErrUnknown)
}

// A target staged but never signed is just unstaged: no device can have
// it, so no floor is raised.
func TestRevokeUnsignedTarget(t *testing.T) {
	f := committed(t)
	must(t, f.r.AddTarget("rootfs-3", bytes.NewReader(payload("3")), custom("rootfs", 3, "board-a"), nil))
	must(t, f.r.Revoke("rootfs-3"))
	floors, err := f.r.Floors()
	must(t, err)
	if len(floors) != 0 {
		t.Fatalf("floors = %v, want none", floors)
	}
}

func TestTargetsListing(t *testing.T) {
	f := committed(t)
	f.release(t, "a", custom("rootfs", 1, "board-a"))
	f.release(t, "b", custom("rootfs", 2, "board-a"))
	must(t, f.r.Revoke("a"))
	must(t, f.r.AddTarget("c", bytes.NewReader(payload("c")), custom("rootfs", 3, "board-a"), nil))
	list, err := f.r.Targets()
	must(t, err)
	var got []string
	for _, ti := range list {
		got = append(got, ti.Name+":"+string(ti.State))
	}
	if want := "a:removed b:signed c:added"; strings.Join(got, " ") != want {
		t.Fatalf("targets = %v, want %s", got, want)
	}
}
