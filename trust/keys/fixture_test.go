package keys_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/koshin-ota/koshin/trust/keys"
)

var update = flag.Bool("update", false, "rewrite the key file fixtures in testdata")

// TestKeyFileFixtures reads key files written by an earlier build: the
// koshin-key-v1 format must stay readable for as long as keys written in
// it exist. Each fixture's public half is in a PEM file next to it.
// Regenerate with: go test ./trust/keys/ -run Fixtures -update
func TestKeyFileFixtures(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(string(alg), func(t *testing.T) {
			keyPath := filepath.Join("testdata", string(alg)+".key")
			pubPath := filepath.Join("testdata", string(alg)+".pub.pem")
			if *update {
				writeFixture(t, alg, keyPath, pubPath)
			}
			want, err := keys.ReadPublicKeyPEM(pubPath)
			if err != nil {
				t.Fatal(err)
			}
			s, err := keys.ReadKeyFile(keyPath, testPassphrase)
			if err != nil {
				t.Fatalf("ReadKeyFile: %v", err)
			}
			wantID, _ := keys.KeyID(want)
			gotID, _ := keys.KeyID(s.Public())
			if gotID != wantID {
				t.Fatalf("fixture key ID = %s, want %s", gotID, wantID)
			}
			root := mustRoot(t, 1, mustTUFKey(t, want))
			if err := root.VerifyDelegate("targets", mustSignTargets(t, s)); err != nil {
				t.Fatalf("fixture key does not sign verifiable metadata: %v", err)
			}
		})
	}
}

func writeFixture(tb testing.TB, alg keys.Algorithm, keyPath, pubPath string) {
	tb.Helper()
	s := mustGenerate(tb, alg)
	os.Remove(keyPath)
	if err := keys.WriteKeyFile(keyPath, s, testPassphrase, fastKDF); err != nil {
		tb.Fatal(err)
	}
	if err := keys.WritePublicKeyPEM(pubPath, s.Public()); err != nil {
		tb.Fatal(err)
	}
}
