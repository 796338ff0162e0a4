package agent_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/encryption"
)

// An encrypted release: the director wraps the content key to this
// device; the agent verifies the ciphertext, decrypts while streaming and
// reads the plaintext back from the slot against its signed digest.
func TestEncryptedRelease(t *testing.T) {
	for _, withKey := range []bool{true, false} {
		t.Run(map[bool]string{true: "device key", false: "no key"}[withKey], func(t *testing.T) {
			ctx := context.Background()
			w := newWorld(t, false)
			plain := image(rand.New(rand.NewPCG(3, 3)), 30<<10)
			name, priv := addEncrypted(t, w, plain)
			s := w.newSim(t, 11, 3)
			defer s.cleanup()
			s.srv.Assign(name)
			s.srv.Instruct = func(nonce string) []byte { return instructWrapped(t, w, s, name, priv.PublicKey(), nonce) }
			if withKey {
				s.tweak = func(c *agent.Config) { c.DecryptionKey = priv }
			}
			s.converge(ctx)
			env, _ := s.d.Boot.Read()
			if !withKey {
				if ev := events(s.srv)[deviceapi.EventRejected]; ev.Reason != trust.ErrDecrypt.Error() {
					t.Fatalf("events %v, want rejected (decrypt)", s.srv.Received())
				}
				if env.Slot != "A" {
					t.Fatal("switched without being able to decrypt")
				}
				return
			}
			got, _ := s.d.Slots.SHA256("B", len(plain))
			if env.Slot != "B" || got != sha(plain) || s.counter() != 3 {
				t.Fatalf("env %+v, slot B %s (want plaintext %s), counter %d", env, got[:8], sha(plain)[:8], s.counter())
			}
		})
	}
}

// addEncrypted publishes plain encrypted under a fresh content key as
// release counter 3 and returns its name and the device's key pair.
func addEncrypted(t *testing.T, w *world, plain []byte) (string, *ecdh.PrivateKey) {
	t.Helper()
	priv, err := encryption.GenerateDeviceKey()
	if err != nil {
		t.Fatal(err)
	}
	ck, err := encryption.NewContentKey()
	if err != nil {
		t.Fatal(err)
	}
	var ct bytes.Buffer
	if _, err := encryption.Encrypt(&ct, bytes.NewReader(plain), ck); err != nil {
		t.Fatal(err)
	}
	c := custom(3)
	c.Encryption, c.PlaintextSHA256, c.PlaintextLength = trust.EncryptionScheme, sha(plain), int64(len(plain))
	w.img.AddTarget("rootfs-3.img", ct.Bytes(), c)
	w.img.Publish()
	w.contentKey = ck
	w.others = map[string][]byte{"encrypted": plain}
	return "rootfs-3.img", priv
}

func instructWrapped(t *testing.T, w *world, s *sim, name string, pub *ecdh.PublicKey, nonce string) []byte {
	img := w.img.Targets.Signed.Targets[name]
	rel, err := encryption.ReleaseID(name, img.Hashes["sha256"])
	if err != nil {
		t.Error(err)
	}
	wrapped, err := encryption.WrapKey(pub, w.contentKey, s.dev.ID, rel)
	if err != nil {
		t.Error(err)
	}
	md := w.dir.DirectorTargets(s.dev.ID, nonce)
	tf := w.dir.Instruction(img, hardware)
	dc, err := trust.ParseDirectorCustom(tf.Custom)
	if err != nil {
		t.Error(errors.Join(err))
	}
	dc.WrappedKey = wrapped
	tf.Custom = dc.Raw()
	md.Signed.Targets[name] = tf
	return w.dir.SignTargets(md)
}
