package verify_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/encryption"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/koshin-ota/koshin/trust/verify"
)

// Streaming verify + decrypt of an encrypted 1 GiB release, to compare with
// BenchmarkSHA256 over the same number of bytes:
//
//	go test -run '^$' -bench 'SHA256|PayloadReader|DecryptVerify' -benchtime 3x ./trust/verify
type encBench struct {
	ct  []byte
	in  verify.Install
	key *verify.DeviceKey
}

var encBenchData = sync.OnceValues(func() (*encBench, error) {
	ck, err := encryption.NewContentKey()
	if err != nil {
		return nil, err
	}
	var ct bytes.Buffer
	ct.Grow(int(encryption.CiphertextLength(benchSize)))
	res, err := encryption.Encrypt(&ct, newPatternReader(), ck)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(ct.Bytes())
	priv, err := encryption.GenerateDeviceKey()
	if err != nil {
		return nil, err
	}
	rid, err := encryption.ReleaseID("bench.img", sum[:])
	if err != nil {
		return nil, err
	}
	wrapped, err := encryption.WrapKey(priv.PublicKey(), ck, "dev-bench", rid)
	if err != nil {
		return nil, err
	}
	in := verify.Install{Name: "bench.img", Length: int64(ct.Len()), Hashes: map[string][]byte{"sha256": sum[:]},
		Custom: trust.TargetCustom{Encryption: trust.EncryptionScheme, PlaintextLength: res.PlaintextLength,
			PlaintextSHA256: res.PlaintextSHA256}, WrappedKey: wrapped}
	return &encBench{ct: ct.Bytes(), in: in, key: &verify.DeviceKey{ID: "dev-bench", Private: priv}}, nil
})

func BenchmarkDecryptVerify(b *testing.B) {
	e, err := encBenchData()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	for b.Loop() {
		payload := verify.NewPayloadReader(bytes.NewReader(e.ct), e.in, verify.PayloadOptions{})
		plain, err := verify.OpenPlaintext(payload, e.in, e.key)
		if err != nil {
			b.Fatal(err)
		}
		if err := drain(plain, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// Metadata refresh of a freshly provisioned device against an image
// repository holding 10,000 targets (root, timestamp, snapshot and a
// ~4 MB targets.json, all signature-checked):
//
//	go test -run '^$' -bench RefreshImage10k -benchtime 10x ./trust/verify
func BenchmarkRefreshImage10k(b *testing.B) {
	img := trusttest.NewRepo(b, trusttest.Options{MetaHashes: true})
	dir := trusttest.NewDirector(b, trusttest.Options{})
	for i := range 10_000 {
		name := fmt.Sprintf("fw-%05d.img", i)
		img.AddTarget(name, []byte(name), &trust.TargetCustom{HardwareIDs: []string{"board-a"},
			Component: "rootfs", ReleaseCounter: uint64(i + 1), Version: fmt.Sprintf("1.%d", i),
			Channel: trust.ChannelRelease})
	}
	img.Publish()
	size := len(img.File(trusttest.RolePath("targets", img.Targets.Signed.Version)))
	clock := trusttest.NewClock(trusttest.Epoch)
	for b.Loop() {
		b.StopTimer()
		state := b.TempDir()
		if err := verify.Provision(state, img.TrustedRoot(), dir.TrustedRoot(), trust.ChannelRelease); err != nil {
			b.Fatal(err)
		}
		v, err := verify.New(verify.Config{Device: trust.Device{ID: "dev-1", HardwareID: "board-a", Channel: trust.ChannelRelease},
			Dir: state, ImageURL: img.MetadataURL(), DirectorURL: dir.MetadataURL(), TargetsURL: img.TargetsURL(),
			Fetcher: trusttest.Mux{img, dir}, Now: clock.Now, Limits: verify.Limits{MaxTargetsSize: 32 << 20}})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := v.RefreshImage(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size), "targets-bytes")
}
