package verify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/koshin-ota/koshin/trust/verify"
	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

var sentinels = []error{
	trust.ErrExpired, trust.ErrRollback, trust.ErrThreshold, trust.ErrMismatch,
	trust.ErrNotFound, trust.ErrNoInstruction, trust.ErrRevoked,
	trust.ErrWrongHardware, trust.ErrWrongChannel, trust.ErrWrongDevice,
	trust.ErrStaleNonce, trust.ErrTooLong, trust.ErrTooSlow, trust.ErrDecrypt,
	trust.ErrInvalid,
}

// checkClassified fails unless err wraps exactly one trust sentinel.
func checkClassified(t *testing.T, err error) {
	t.Helper()
	n := 0
	for _, s := range sentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("error wraps %d trust sentinels: %v", n, err)
	}
}

// signedPart is the canonical form of what a metadata file's signatures cover.
func signedPart(t testing.TB, data []byte) []byte {
	t.Helper()
	var doc struct{ Signed any }
	if err := jsonUnmarshal(data, &doc); err != nil {
		t.Fatalf("accepted metadata does not parse: %v", err)
	}
	c, err := cjson.EncodeCanonical(doc.Signed)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Arbitrary director documents never crash the verifier, every refusal is
// classified, and only what the director signed is ever accepted.
func FuzzCheckDirector(f *testing.F) {
	fx := newFixture(f)
	fx.refresh()
	const nonce = "fuzz-nonce"
	md := fx.dir.DirectorTargets(fx.dev.ID, nonce)
	md.Signed.Targets[release] = fx.dir.Instruction(fx.img.Targets.Signed.Targets[release], hardware)
	honest := fx.dir.SignTargets(md)
	want := signedPart(f, honest)
	f.Add(honest)
	f.Add([]byte(`{"signed":{"_type":"targets","version":1,"expires":"2040-01-01T00:00:00Z","targets":{"x":null}},"signatures":[]}`))
	f.Add([]byte(`{"signed":{"_type":"targets","targets":{"x":{"length":1,"hashes":{"sha256":"00"}}}},"signatures":[{"keyid":"","sig":""}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		plan, err := fx.v.CheckDirector(context.Background(), data, nonce)
		if err != nil {
			checkClassified(t, err)
			return
		}
		if !bytes.Equal(signedPart(t, data), want) {
			t.Fatalf("accepted a document the director did not sign: %s", data)
		}
		if len(plan.Targets) != 1 || plan.Targets[0].Name != release {
			t.Fatalf("plan %+v", plan)
		}
	})
}

// Arbitrary repository metadata (timestamp, snapshot, targets, next root)
// never crashes a refresh, every refusal is classified, and nothing but
// what the repository's keys signed is accepted.
func FuzzImageMetadata(f *testing.F) {
	fx := newFixtureWith(f, trusttest.Options{}) // no meta hashes: fuzzed bytes reach the parsers
	fx.refresh()
	paths := []string{trusttest.RolePath(metadata.TIMESTAMP, 0), trusttest.RolePath(metadata.SNAPSHOT, 2),
		trusttest.RolePath(metadata.TARGETS, 2), trusttest.RootPath(2)}
	honest := make([][]byte, len(paths))
	for i, p := range paths {
		honest[i] = fx.img.File(p)
	}
	for i := range paths[:3] {
		f.Add(uint8(i), honest[i])
	}
	f.Add(uint8(3), honest[0])
	f.Add(uint8(2), []byte(`{"signed":{"_type":"targets","version":2,"expires":"2040-01-01T00:00:00Z","targets":{"x":null}},"signatures":[]}`))
	f.Add(uint8(0), []byte(`{"signed":{"_type":"timestamp","version":9,"expires":"2040-01-01T00:00:00Z","meta":{"snapshot.json":null}},"signatures":[]}`))
	f.Add(uint8(3), []byte(`{"signed":{"_type":"root","version":2,"roles":{"root":null},"keys":{"k":null}},"signatures":[]}`))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		i := int(which) % len(paths)
		for _, role := range []string{metadata.SNAPSHOT, metadata.TARGETS} {
			os.Remove(filepath.Join(fx.stateDir, "image", role+".json")) // make the refresh fetch them
		}
		fx.img.SetFile(paths[i], data)
		defer func() {
			if honest[i] == nil {
				fx.img.RemoveFile(paths[i])
			} else {
				fx.img.SetFile(paths[i], honest[i])
			}
		}()
		err := fx.v.RefreshImage(context.Background())
		if err != nil {
			checkClassified(t, err)
			return
		}
		if honest[i] == nil || !bytes.Equal(signedPart(t, data), signedPart(t, honest[i])) {
			t.Fatalf("refresh accepted unsigned content for %s: %s", paths[i], data)
		}
	})
}

// Any byte stream: the reader passes on at most the signed length and ends
// in io.EOF exactly when the stream is the signed payload.
func FuzzPayloadReader(f *testing.F) {
	signed := testPayload(3000)
	in := installFor(signed, "sha256", "sha512")
	f.Add(signed, uint16(512))
	f.Add(signed[:2999], uint16(7))
	f.Add(append(bytes.Clone(signed), 0), uint16(4096))
	f.Add([]byte{}, uint16(1))
	f.Fuzz(func(t *testing.T, body []byte, size uint16) {
		got, err := readAll(verify.NewPayloadReader(bytes.NewReader(body), in, verify.PayloadOptions{}), int(size%8192)+1)
		if int64(len(got)) > in.Length {
			t.Fatalf("passed on %d bytes", len(got))
		}
		if ok := bytes.Equal(body, signed); ok != (err == nil) {
			t.Fatalf("payload equal %v, err %v", ok, err)
		}
		if err != nil && !errors.Is(err, trust.ErrTooLong) && !errors.Is(err, trust.ErrMismatch) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// Arbitrary checkpoints never crash a resume; an accepted one can only lead
// to the signed payload or a refusal.
func FuzzResumePayloadReader(f *testing.F) {
	signed := testPayload(3000)
	in := installFor(signed, "sha256", "sha512")
	r := verify.NewPayloadReader(bytes.NewReader(signed), in, verify.PayloadOptions{})
	io.CopyN(io.Discard, r, 1234)
	cp, _, err := r.Checkpoint()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(cp)
	f.Add(cp[:40])
	f.Fuzz(func(t *testing.T, cp []byte) {
		// Resume against a stream that is the payload from the claimed
		// offset; the offset is at byte 4..12 of the checkpoint.
		var off int64
		if len(cp) >= 12 {
			for _, b := range cp[4:12] {
				off = off<<8 | int64(b)
			}
		}
		if off < 0 || off > int64(len(signed)) {
			off = 0
		}
		p, err := verify.ResumePayloadReader(bytes.NewReader(signed[off:]), in, cp, verify.PayloadOptions{})
		if err != nil {
			checkClassified(t, err)
			return
		}
		if _, err := io.ReadAll(p); err != nil && !errors.Is(err, trust.ErrMismatch) && !errors.Is(err, trust.ErrTooLong) {
			t.Fatalf("resumed read: %v", err)
		}
	})
}

func jsonUnmarshal(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	return d.Decode(v)
}
