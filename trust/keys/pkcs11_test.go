//go:build pkcs11

package keys_test

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/koshin-ota/koshin/trust/keys"
)

const pinEnv = "KOSHIN_TEST_PKCS11_PIN"

// TestPKCS11SoftHSM runs the PKCS#11 backend against a SoftHSM2 token in a
// temporary directory (CCDS UPC11, UPE12). One token serves all subtests:
// the PKCS#11 module reads SOFTHSM2_CONF once, when first initialised.
func TestPKCS11SoftHSM(t *testing.T) {
	cfg := newSoftHSMToken(t)
	// PKCS#11 login state is per process: the PIN checks run while no
	// signer of the token is open, or an open one would log them in.
	t.Run("WrongPIN", func(t *testing.T) { testHSMWrongPIN(t, cfg) })
	gen, err := keys.GeneratePKCS11(cfg)
	if err != nil {
		t.Fatalf("GeneratePKCS11: %v", err)
	}
	pub := gen.Public()
	must(t, keys.CloseSigner(gen))
	if alg, err := keys.AlgorithmOf(pub); err != nil || alg != keys.ECDSAP256 {
		t.Fatalf("token key algorithm = %q, %v; want ecdsa-p256", alg, err)
	}
	t.Run("PromptedPIN", func(t *testing.T) { testHSMPromptedPIN(t, cfg, pub) })

	hsm, err := keys.Open(cfg.URI(), nil)
	if err != nil {
		t.Fatalf("Open(%s): %v", cfg, err)
	}
	t.Cleanup(func() { keys.CloseSigner(hsm) })
	t.Run("SignTargets", func(t *testing.T) { testHSMSignTargets(t, hsm) })
	t.Run("DuplicateKeyIsOneVote", func(t *testing.T) { testHSMDuplicateKey(t, hsm) })
	t.Run("OpenByURI", func(t *testing.T) { testHSMOpenByURI(t, cfg, pub) })
	t.Run("GenerateRefusesUsedLabel", func(t *testing.T) {
		if _, err := keys.GeneratePKCS11(cfg); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("second GeneratePKCS11 error = %v, want fs.ErrExist", err)
		}
	})
	t.Run("UnknownObject", func(t *testing.T) {
		missing := cfg
		missing.ObjectLabel = "no-such-key"
		if _, err := keys.OpenPKCS11(missing); err == nil {
			t.Fatal("OpenPKCS11 found a key that does not exist")
		}
	})
	t.Run("SignRejectsUnhashed", func(t *testing.T) {
		if _, err := hsm.Sign(rand.Reader, []byte("a message, not a digest"), crypto.Hash(0)); err == nil {
			t.Fatal("token signed an unhashed message")
		}
	})
}

func testHSMWrongPIN(t *testing.T, cfg keys.PKCS11Config) {
	bad := cfg
	bad.PINSource, bad.PIN = "", "wrong-pin-0000"
	if _, err := keys.GeneratePKCS11(bad); !errors.Is(err, keys.ErrBadPassphrase) {
		t.Fatalf("GeneratePKCS11 with a wrong PIN error = %v, want ErrBadPassphrase", err)
	}
}

// testHSMPromptedPIN: a URI without a PIN source asks the PassphraseFunc,
// and a wrong answer is refused by the token.
func testHSMPromptedPIN(t *testing.T, cfg keys.PKCS11Config, want crypto.PublicKey) {
	noPIN := cfg
	noPIN.PINSource = ""
	var prompts []string
	if _, err := keys.Open(noPIN.URI(), fixedPassphrase([]byte("wrong-pin-0000"), &prompts)); !errors.Is(err, keys.ErrBadPassphrase) {
		t.Fatalf("Open with a wrong prompted PIN error = %v, want ErrBadPassphrase", err)
	}
	s, err := keys.Open(noPIN.URI(), fixedPassphrase([]byte(os.Getenv(pinEnv)), &prompts))
	if err != nil {
		t.Fatalf("Open with the prompted PIN: %v", err)
	}
	defer keys.CloseSigner(s)
	if !s.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(want) {
		t.Fatal("opened a different key")
	}
	if len(prompts) != 2 {
		t.Fatalf("prompts = %q, want two", prompts)
	}
}

// newSoftHSMToken initialises a fresh token with random PINs and returns
// the configuration that names a key on it.
func newSoftHSMToken(t *testing.T) keys.PKCS11Config {
	t.Helper()
	if os.Getenv("KOSHIN_INTEGRATION") != "1" {
		t.Skip("SoftHSM2 test: set KOSHIN_INTEGRATION=1 (and install softhsm2) to run")
	}
	if _, err := os.Stat(softhsmModule); err != nil {
		t.Skipf("SoftHSM2 test: %s not found; apt-get install softhsm2", softhsmModule)
	}
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		t.Fatalf("SoftHSM2 module present but softhsm2-util missing: %v", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	must(t, os.Mkdir(filepath.Join(dir, "tokens"), 0o700))
	must(t, os.WriteFile(conf, fmt.Appendf(nil, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n", dir), 0o600))
	t.Setenv("SOFTHSM2_CONF", conf)
	pin, soPIN := randomPIN(t), randomPIN(t)
	t.Setenv(pinEnv, pin)
	out, err := exec.Command(util, "--init-token", "--free", "--label", "koshin-test", "--pin", pin, "--so-pin", soPIN).CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return keys.PKCS11Config{
		ModulePath:  softhsmModule,
		TokenLabel:  "koshin-test",
		ObjectLabel: "targets-hsm-1",
		PINSource:   "env:" + pinEnv,
	}
}

func randomPIN(t *testing.T) string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testHSMSignTargets: targets metadata signed on the token verifies under
// a root whose targets role lists the token's key, and stops verifying
// once the signed content changes.
func testHSMSignTargets(t *testing.T, hsm crypto.Signer) {
	root := mustRoot(t, 1, mustTUFKey(t, hsm.Public()))
	targets := mustSignTargets(t, hsm)
	if err := root.VerifyDelegate(metadata.TARGETS, targets); err != nil {
		t.Fatalf("VerifyDelegate: %v", err)
	}
	targets.Signed.Version++
	if err := root.VerifyDelegate(metadata.TARGETS, targets); err == nil {
		t.Fatal("VerifyDelegate accepted metadata changed after signing")
	}
}

// testHSMDuplicateKey: one key listed under two key IDs (keytype "ecdsa"
// and the compatible "ecdsa-sha2-nistp256") must not meet a threshold of
// two by itself (CCDS UPC11 multi-party signing); a second, distinct key
// must be needed.
func testHSMDuplicateKey(t *testing.T, hsm crypto.Signer) {
	key := mustTUFKey(t, hsm.Public())
	compat := &metadata.Key{Type: metadata.KeyTypeECDSA_SHA2_P256_COMPAT, Scheme: key.Scheme, Value: key.Value}
	keyID, _ := key.ID()
	compatID, _ := compat.ID()
	if keyID == compatID {
		t.Fatal("the two key records share an ID; the test would prove nothing")
	}
	targets := mustSignTargets(t, hsm)
	signAs(t, targets, hsm, compatID)

	// Each signature is valid on its own, so a failure below comes from
	// counting one key once, not from a bad signature.
	if err := mustRoot(t, 1, compat).VerifyDelegate(metadata.TARGETS, targets); err != nil {
		t.Fatalf("signature under the compat key ID does not verify alone: %v", err)
	}
	if err := mustRoot(t, 2, key, compat).VerifyDelegate(metadata.TARGETS, targets); err == nil {
		t.Fatal("threshold 2 met by one token key listed twice")
	}

	file := fileKey(t)
	mustSign(t, targets, file)
	root := mustRoot(t, 2, key, compat, mustTUFKey(t, file.Public()))
	if err := root.VerifyDelegate(metadata.TARGETS, targets); err != nil {
		t.Fatalf("threshold 2 with token key and file key: %v", err)
	}
}

// signAs appends a signature by s under an explicit key ID, as a signer
// listed under a second key record would.
func signAs(t *testing.T, md *metadata.Metadata[metadata.TargetsType], s crypto.Signer, keyID string) {
	t.Helper()
	payload, err := cjson.EncodeCanonical(md.Signed)
	must(t, err)
	digest := sha256.Sum256(payload)
	sig, err := s.Sign(rand.Reader, digest[:], crypto.SHA256)
	must(t, err)
	md.Signatures = append(md.Signatures, metadata.Signature{KeyID: keyID, Signature: sig})
}

// fileKey is a second key holder's encrypted file key, through the full
// write and read path.
func fileKey(t *testing.T) crypto.Signer {
	path := mustWriteKey(t, mustGenerate(t, keys.ECDSAP256))
	s, err := keys.ReadKeyFile(path, testPassphrase)
	must(t, err)
	return s
}

// testHSMOpenByURI: a key reference finds the generated key, Public reads
// it with the URI's PIN source, and a closed signer no longer signs.
func testHSMOpenByURI(t *testing.T, cfg keys.PKCS11Config, want crypto.PublicKey) {
	wantID, _ := keys.KeyID(want)
	s, err := keys.Open(cfg.URI(), nil)
	if err != nil {
		t.Fatalf("Open(%s): %v", cfg, err)
	}
	if id, _ := keys.KeyID(s.Public()); id != wantID {
		t.Fatalf("opened key ID = %s, want %s", id, wantID)
	}
	if _, ok := s.(io.Closer); !ok {
		t.Fatal("PKCS#11 signer does not implement io.Closer")
	}
	pub, err := keys.Public(cfg.URI())
	if err != nil {
		t.Fatalf("Public: %v", err)
	}
	if id, _ := keys.KeyID(pub); id != wantID {
		t.Fatalf("Public key ID = %s, want %s", id, wantID)
	}
	must(t, keys.CloseSigner(s))
	must(t, keys.CloseSigner(s)) // idempotent
	digest := sha256.Sum256([]byte("x"))
	if _, err := s.Sign(rand.Reader, digest[:], crypto.SHA256); err == nil {
		t.Fatal("closed signer still signs")
	}
}
