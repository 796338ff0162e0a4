package repo_test

import (
	"bytes"
	"crypto"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/repo"
)

// Thresholds (CCDS UPC07/UPC11): with root 2-of-3, one signature is not
// enough, the same key twice does not count twice, two distinct keys are.
func TestThreshold(t *testing.T) {
	f := newFixture(t, repo.InitOptions{Thresholds: map[string]int{"root": 2}})
	r2, r3 := edKey(11), ecKey(t)
	must(t, f.r.AddKey("root", r2.Public(), ""))
	must(t, f.r.AddKey("root", r3.Public(), ""))
	must(t, f.r.Sign("targets", f.targets))

	must(t, f.r.Sign("root", f.root))
	st, err := f.r.SignatureStatus("root")
	must(t, err)
	if st.Have != 1 || st.Need != 2 || st.Complete() {
		t.Fatalf("after one signature: %+v", st)
	}
	_, err = f.r.Commit(testNow, f.online())
	wantErr(t, err, repo.ErrNothingToCommit) // root 1 is incomplete

	wantErr(t, f.r.Sign("root", f.root), repo.ErrDuplicate)
	if st, _ := f.r.SignatureStatus("root"); st.Have != 1 {
		t.Fatalf("a repeated key counted: %+v", st)
	}

	must(t, f.r.Sign("root", r3)) // ECDSA P-256 alongside Ed25519
	if st, _ := f.r.SignatureStatus("root"); !st.Complete() {
		t.Fatalf("two distinct keys of 2-of-3 not complete: %+v", st)
	}
	c := f.commit(t)
	if !c.Root || !c.Targets || c.Versions != (repo.Versions{Root: 1, Targets: 1, Snapshot: 1, Timestamp: 1}) {
		t.Fatalf("commit = %+v", c)
	}
}

func TestSignRefusals(t *testing.T) {
	f := newFixture(t, repo.InitOptions{})
	wantErr(t, f.r.Sign("root", edKey(99)), repo.ErrNotAuthorised)
	wantErr(t, f.r.Sign("targets", f.root), repo.ErrNotAuthorised)
	wantErr(t, f.r.Sign("snapshot", f.snapshot), trust.ErrInvalid) // online roles are signed at commit
	wantErr(t, f.r.Sign("nonsense", f.root), trust.ErrInvalid)

	// A threshold the keys cannot meet is refused at signing.
	must(t, f.r.SetThreshold("targets", 2))
	wantErr(t, f.r.Sign("targets", f.targets), trust.ErrThreshold)
	wantErr(t, f.r.Sign("root", f.root), trust.ErrThreshold) // the root would be unusable
	must(t, f.r.SetThreshold("targets", 1))

	wantErr(t, f.r.SetThreshold("targets", 0), trust.ErrInvalid)
	wantErr(t, f.r.SetThreshold("timestamp", 2), trust.ErrInvalid)

	must(t, f.r.Sign("root", f.root))
	must(t, f.r.Sign("targets", f.targets))
	f.commit(t)
	wantErr(t, f.r.Sign("targets", f.targets), repo.ErrNothingStaged)
}

// An edit after signing drops the signatures: they covered other content.
func TestEditDropsSignatures(t *testing.T) {
	f := committed(t)
	must(t, f.r.AddTarget("a", bytes.NewReader(payload("a")), custom("rootfs", 1, "board-a"), nil))
	must(t, f.r.Sign("targets", f.targets))
	must(t, f.r.AddTarget("b", bytes.NewReader(payload("b")), custom("rootfs", 2, "board-a"), nil))
	st, err := f.r.SignatureStatus("targets")
	must(t, err)
	if st.Have != 0 {
		t.Fatalf("signatures survived an edit: %+v", st)
	}
	_, err = f.r.Commit(testNow, f.online())
	wantErr(t, err, repo.ErrNothingToCommit)
}

// Online and offline duties need separate keys: a server compromise must
// not yield a root or targets key.
func TestKeySeparation(t *testing.T) {
	f := newFixture(t, repo.InitOptions{})
	wantErr(t, f.r.AddKey("timestamp", f.root.Public(), ""), trust.ErrInvalid)
	wantErr(t, f.r.AddKey("targets", f.snapshot.Public(), ""), trust.ErrInvalid)
	wantErr(t, f.r.AddKey("targets", f.targets.Public(), ""), repo.ErrDuplicate)
	must(t, f.r.AddKey("targets", f.root.Public(), "")) // both offline: allowed
}

func TestRemoveKey(t *testing.T) {
	f := committed(t)
	t2 := edKey(12)
	must(t, f.r.AddKey("targets", t2.Public(), "t2.key"))
	must(t, f.r.RemoveKey("targets", keyID(t, f.targets)))
	wantErr(t, f.r.RemoveKey("targets", keyID(t, f.targets)), repo.ErrUnknown)
	var got []string
	for _, k := range f.r.Keys() {
		if k.Role == "targets" {
			got = append(got, k.KeyID+" "+k.Ref)
		}
	}
	if len(got) != 1 || got[0] != keyID(t, t2)+" t2.key" {
		t.Fatalf("targets keys = %v", got)
	}
	// The old targets key still governs the signed targets, so the root
	// cannot be committed alone.
	must(t, f.r.Sign("root", f.root))
	_, err := f.r.Commit(testNow, f.online())
	wantErr(t, err, trust.ErrThreshold)
	must(t, f.r.Stage("targets"))
	wantErr(t, f.r.Sign("targets", f.targets), repo.ErrNotAuthorised)
	must(t, f.r.Sign("targets", t2))
	c := f.commit(t)
	if !c.Root || !c.Targets {
		t.Fatalf("commit = %+v", c)
	}
}

func TestStageAndDiscard(t *testing.T) {
	f := committed(t)
	must(t, f.r.Stage("targets"))
	wantErr(t, f.r.Stage("targets"), repo.ErrDuplicate)
	must(t, f.r.Discard("targets"))
	wantErr(t, f.r.Discard("targets"), repo.ErrNothingStaged)
	wantErr(t, f.r.Stage("timestamp"), trust.ErrInvalid)

	// Renewing targets before expiry: a new version, same content.
	must(t, f.r.Stage("targets"))
	must(t, f.r.Sign("targets", f.targets))
	if c := f.commit(t); c.Versions.Targets != 2 {
		t.Fatalf("versions = %+v", c.Versions)
	}
}

func signers(s ...crypto.Signer) []crypto.Signer { return s }
