package keys_test

import (
	"crypto"
	"encoding/json"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/koshin-ota/koshin/trust/keys"
)

// fastKDF is the cheapest parameter set koshin accepts, passed explicitly
// so tests stay quick; production code uses the zero value (DefaultKDF).
var fastKDF = keys.KDFParams{Time: 1, MemoryKiB: 8 << 10, Threads: 1}

var testPassphrase = []byte("correct horse battery staple")

// expiry is fixed: VerifyDelegate does not check it, and tests never read
// the clock.
var expiry = time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)

func mustGenerate(tb testing.TB, alg keys.Algorithm) crypto.Signer {
	tb.Helper()
	s, err := keys.Generate(alg)
	if err != nil {
		tb.Fatalf("Generate(%s): %v", alg, err)
	}
	return s
}

func mustTUFKey(tb testing.TB, pub crypto.PublicKey) *metadata.Key {
	tb.Helper()
	k, err := keys.TUFKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// mustRoot returns a root whose targets role lists the given keys with the
// given threshold.
func mustRoot(tb testing.TB, threshold int, roleKeys ...*metadata.Key) *metadata.Metadata[metadata.RootType] {
	tb.Helper()
	root := metadata.Root(expiry)
	for _, k := range roleKeys {
		if err := root.Signed.AddKey(k, metadata.TARGETS); err != nil {
			tb.Fatal(err)
		}
	}
	root.Signed.Roles[metadata.TARGETS].Threshold = threshold
	return root
}

// mustSignTargets signs a fresh targets document with each signer through
// TUFSigner, as the repository code does.
func mustSignTargets(tb testing.TB, signers ...crypto.Signer) *metadata.Metadata[metadata.TargetsType] {
	tb.Helper()
	targets := metadata.Targets(expiry)
	for _, s := range signers {
		mustSign(tb, targets, s)
	}
	return targets
}

func mustSign(tb testing.TB, md *metadata.Metadata[metadata.TargetsType], s crypto.Signer) {
	tb.Helper()
	ts, err := keys.TUFSigner(s)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := md.Sign(ts); err != nil {
		tb.Fatalf("sign targets: %v", err)
	}
}

// mutateJSON decodes a key file into a generic map, lets f change it and
// encodes it again: the tamper tests' way of editing one field.
func mutateJSON(tb testing.TB, data []byte, f func(m map[string]any)) []byte {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		tb.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
