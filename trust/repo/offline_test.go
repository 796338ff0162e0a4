package repo_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/repo"
)

// The offline flow (CCDS UPC11): export → SignOffline (no repository) →
// import completes the role; the private key never meets the repository.
func TestOfflineRoundTrip(t *testing.T) {
	f := committed(t)
	must(t, f.r.AddTarget("a", bytes.NewReader(payload("a")), custom("rootfs", 1, "board-a"), nil))
	unsigned, err := f.r.ExportUnsigned("targets")
	must(t, err)

	desc, err := repo.DescribeUnsigned(unsigned)
	must(t, err)
	if !strings.Contains(desc, "+ a: component rootfs, counter 1") {
		t.Fatalf("description lacks the target:\n%s", desc)
	}
	sig, err := repo.SignOffline(unsigned, f.targets)
	must(t, err)
	sf, err := repo.ParseSignatureFile(sig)
	must(t, err)
	if sf.Role != "targets" || sf.Version != 2 || sf.KeyID != keyID(t, f.targets) {
		t.Fatalf("signature file = %+v", sf)
	}
	wantErr(t, f.r.ImportSignature("root", sig), trust.ErrMismatch)
	must(t, f.r.ImportSignature("targets", sig))
	wantErr(t, f.r.ImportSignature("targets", sig), repo.ErrDuplicate)
	if c := f.commit(t); !c.Targets {
		t.Fatalf("commit = %+v", c)
	}
}

func TestImportRefusals(t *testing.T) {
	f := committed(t)
	must(t, f.r.AddTarget("a", bytes.NewReader(payload("a")), custom("rootfs", 1, "board-a"), nil))
	unsigned, err := f.r.ExportUnsigned("targets")
	must(t, err)

	t.Run("unauthorised key", func(t *testing.T) {
		sig, err := repo.SignOffline(unsigned, edKey(77))
		must(t, err)
		wantErr(t, f.r.ImportSignature("targets", sig), repo.ErrNotAuthorised)
	})
	t.Run("forged signature", func(t *testing.T) {
		sig, err := repo.SignOffline(unsigned, f.targets)
		must(t, err)
		var sf repo.SignatureFile
		must(t, json.Unmarshal(sig, &sf))
		sf.Sig = strings.Repeat("ab", 64)
		forged, _ := json.Marshal(sf)
		wantErr(t, f.r.ImportSignature("targets", forged), trust.ErrThreshold)
	})
	t.Run("role changed after export", func(t *testing.T) {
		sig, err := repo.SignOffline(unsigned, f.targets)
		must(t, err)
		must(t, f.r.AddTarget("b", bytes.NewReader(payload("b")), custom("rootfs", 2, "board-a"), nil))
		wantErr(t, f.r.ImportSignature("targets", sig), trust.ErrMismatch)
	})
	t.Run("garbage", func(t *testing.T) {
		wantErr(t, f.r.ImportSignature("targets", []byte(`{"koshin_signature":1}`)), trust.ErrInvalid)
		_, err := repo.SignOffline([]byte(`{"signed":{"_type":"timestamp"}}`), f.targets)
		wantErr(t, err, trust.ErrInvalid)
	})
}

// Root N+1 signed offline by an old-root key holder.
func TestOfflineRootSignature(t *testing.T) {
	f := committed(t)
	newRoot := edKey(21)
	must(t, f.r.RotateRoot(map[string]repo.RoleSpec{"root": {Keys: []repo.KeySpec{{Public: newRoot.Public()}}}}, newRoot))
	unsigned, err := f.r.ExportUnsigned("root")
	must(t, err)
	sig, err := repo.SignOffline(unsigned, f.root)
	must(t, err)
	must(t, f.r.ImportSignature("root", sig))
	if c := f.commit(t); !c.Root {
		t.Fatalf("commit = %+v", c)
	}
}
