package repo_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/repo"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Root rotation (TUF 5.3.4; CCDS UPC06/UPC07): root 2 is accepted only with
// a threshold of root 1's keys and a threshold of its own; both roots stay
// in the repository, and go-tuf verifies 2 with 1's and with 2's keys.
func TestRotateRoot(t *testing.T) {
	f := committed(t)
	n1, n2, n3 := edKey(31), edKey(32), ecKey(t)
	spec := map[string]repo.RoleSpec{"root": {Keys: []repo.KeySpec{{Public: n1.Public()}, {Public: n2.Public()}, {Public: n3.Public()}}, Threshold: 2}}

	// New keys alone are not enough: the old root must approve.
	must(t, f.r.RotateRoot(spec, n1, n2))
	st, err := f.r.SignatureStatus("root")
	must(t, err)
	if st.Complete() || st.Have != 2 || st.PrevHave != 0 || st.PrevNeed != 1 {
		t.Fatalf("signed by new keys only: %+v", st)
	}
	_, err = f.r.Commit(testNow, f.online())
	wantErr(t, err, repo.ErrNothingToCommit)
	wantErr(t, f.r.RotateRoot(spec), repo.ErrDuplicate) // one staged root at a time

	// The old key alone is not enough either.
	must(t, f.r.Discard("root"))
	must(t, f.r.RotateRoot(spec, f.root, n1))
	if st, _ := f.r.SignatureStatus("root"); st.Complete() {
		t.Fatalf("old key and one of two new: %+v", st)
	}
	must(t, f.r.Sign("root", n3))
	if c := f.commit(t); !c.Root || c.Versions.Root != 2 {
		t.Fatalf("commit = %+v", c)
	}
	f.reopen(t)

	r1 := readMeta[metadata.RootType](t, filepath.Join(f.dir, "signed", "1.root.json"))
	r2 := readMeta[metadata.RootType](t, filepath.Join(f.dir, "signed", "2.root.json"))
	must(t, r1.VerifyDelegate("root", r2))
	must(t, r2.VerifyDelegate("root", r2))
	if c, _ := trust.RootChannel(&r2.Signed); c != trust.ChannelRelease {
		t.Fatalf("root 2 channel %q", c)
	}

	// The retired key can no longer sign root 3.
	must(t, f.r.Stage("root"))
	wantErr(t, f.r.Sign("root", f.root), repo.ErrNotAuthorised)
}

// Rotating the online keys: the new snapshot and timestamp keys sign the
// commit that installs them, and old ones are refused.
func TestRotateOnlineKeys(t *testing.T) {
	f := committed(t)
	s2, t2 := edKey(41), edKey(42)
	spec := map[string]repo.RoleSpec{
		"snapshot":  {Keys: []repo.KeySpec{{Public: s2.Public(), Ref: "s2.key"}}},
		"timestamp": {Keys: []repo.KeySpec{{Public: t2.Public(), Ref: "t2.key"}}},
	}
	must(t, f.r.RotateRoot(spec, f.root))
	_, err := f.r.Commit(testNow, f.online())
	wantErr(t, err, repo.ErrNotAuthorised)
	f.snapshot, f.timestamp = s2, t2
	f.commit(t)
	must(t, f.r.Timestamp(testNow, s2, t2))
	refs := map[string]string{}
	for _, k := range f.r.Keys() {
		refs[k.Role] = k.Ref
	}
	if refs["snapshot"] != "s2.key" || refs["timestamp"] != "t2.key" {
		t.Fatalf("refs = %v", refs)
	}
}

func TestRotateRootRefusals(t *testing.T) {
	f := newFixture(t, repo.InitOptions{})
	wantErr(t, f.r.RotateRoot(nil, f.root), repo.ErrNotCommitted)
	f = committed(t)
	wantErr(t, f.r.RotateRoot(map[string]repo.RoleSpec{"root": {Threshold: 2}}, f.root), trust.ErrThreshold)
	wantErr(t, f.r.RotateRoot(map[string]repo.RoleSpec{"mirror": {Threshold: 1}}, f.root), trust.ErrInvalid)
	if _, err := os.Stat(filepath.Join(f.dir, "staged", "root.json")); !os.IsNotExist(err) {
		t.Fatalf("a refused rotation left a staged root (err %v)", err)
	}
}
