package verify_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
	"github.com/koshin-ota/koshin/trust/verify"
)

func installFor(data []byte, algs ...string) verify.Install {
	in := verify.Install{Name: "p.img", Length: int64(len(data)), Hashes: map[string][]byte{}}
	for _, alg := range algs {
		switch alg {
		case "sha256":
			s := sha256.Sum256(data)
			in.Hashes[alg] = s[:]
		case "sha512":
			s := sha512.Sum512(data)
			in.Hashes[alg] = s[:]
		}
	}
	return in
}

func testPayload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// The reader passes the exact signed payload through, for any read pattern.
func TestPayloadReaderExact(t *testing.T) {
	data := testPayload(100_000)
	for _, algs := range [][]string{{"sha256"}, {"sha512"}, {"sha256", "sha512"}} {
		in := installFor(data, algs...)
		if err := iotest.TestReader(verify.NewPayloadReader(bytes.NewReader(data), in, verify.PayloadOptions{}), data); err != nil {
			t.Errorf("%v: %v", algs, err)
		}
		for name, r := range map[string]io.Reader{
			"one byte": iotest.OneByteReader(bytes.NewReader(data)),
			"data+EOF": iotest.DataErrReader(bytes.NewReader(data)),
			"half":     iotest.HalfReader(bytes.NewReader(data)),
		} {
			got, err := io.ReadAll(verify.NewPayloadReader(r, in, verify.PayloadOptions{}))
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("%v %s: %d bytes, %v", algs, name, len(got), err)
			}
		}
	}
}

// Anything but the signed payload is refused (CCDS UPE11; endless data).
func TestPayloadReaderRefuses(t *testing.T) {
	data := testPayload(10_000)
	in := installFor(data, "sha256")
	tampered := bytes.Clone(data)
	tampered[5000] ^= 1
	wrong512 := installFor(data, "sha256", "sha512")
	wrong512.Hashes["sha512"][0] ^= 1
	tests := []struct {
		name string
		in   verify.Install
		body []byte
		want error
	}{
		{"one byte more", in, append(bytes.Clone(data), 0), trust.ErrTooLong},
		{"endless", in, bytes.Repeat(data, 100), trust.ErrTooLong},
		{"short", in, data[:9999], trust.ErrMismatch},
		{"empty", in, nil, trust.ErrMismatch},
		{"tampered", in, tampered, trust.ErrMismatch},
		{"sha512 differs", wrong512, data, trust.ErrMismatch},
		{"no hash", verify.Install{Length: 1}, data, trust.ErrInvalid},
		{"unsupported hash", verify.Install{Length: 1, Hashes: map[string][]byte{"md5": make([]byte, 16)}}, data, trust.ErrInvalid},
		{"truncated hash", verify.Install{Length: 1, Hashes: map[string][]byte{"sha256": make([]byte, 16)}}, data, trust.ErrInvalid},
		{"negative length", verify.Install{Length: -1, Hashes: in.Hashes}, data, trust.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := io.ReadAll(verify.NewPayloadReader(bytes.NewReader(tt.body), tt.in, verify.PayloadOptions{}))
			wantErr(t, err, tt.want)
			if int64(len(got)) > max(tt.in.Length, 0) {
				t.Fatalf("passed on %d bytes, signed length %d", len(got), tt.in.Length)
			}
		})
	}
}

// Slow retrieval: a server trickling bytes fails the throughput floor,
// measured on the injected clock.
func TestPayloadReaderTooSlow(t *testing.T) {
	data := testPayload(100_000)
	in := installFor(data, "sha256")
	clock := trusttest.NewClock(trusttest.Epoch)
	opts := verify.PayloadOptions{MinRate: 1000, Window: 10 * time.Second, Now: clock.Now}

	slow := &trusttest.SlowReader{R: bytes.NewReader(data), Clock: clock, Chunk: 500, Step: time.Second}
	_, err := readAll(verify.NewPayloadReader(slow, in, opts), 4096)
	wantErr(t, err, trust.ErrTooSlow)

	fast := &trusttest.SlowReader{R: bytes.NewReader(data), Clock: clock, Chunk: 1500, Step: time.Second}
	if _, err := readAll(verify.NewPayloadReader(fast, in, opts), 4096); err != nil {
		t.Fatalf("1500 B/s against a 1000 B/s floor: %v", err)
	}
}

// A download interrupted at any point resumes from a checkpoint (the
// agent's journal) and still verifies the whole payload (CCDS UPE14).
func TestPayloadCheckpoint(t *testing.T) {
	data := testPayload(70_000)
	in := installFor(data, "sha256", "sha512")
	for _, cut := range []int{0, 1, 4096, 65_536, 69_999, 70_000} {
		r := verify.NewPayloadReader(bytes.NewReader(data[:cut]), in, verify.PayloadOptions{})
		got, _ := io.ReadAll(io.LimitReader(r, int64(cut)))
		cp, off, err := r.Checkpoint()
		if err != nil || off != int64(cut) {
			t.Fatalf("cut %d: checkpoint at %d, %v", cut, off, err)
		}
		rest, err := verify.ResumePayloadReader(bytes.NewReader(data[off:]), in, cp, verify.PayloadOptions{})
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		tail, err := io.ReadAll(rest)
		if err != nil || !bytes.Equal(append(got, tail...), data) {
			t.Fatalf("cut %d: resumed read %d bytes, %v", cut, len(tail), err)
		}
	}
}

func TestPayloadCheckpointRefused(t *testing.T) {
	data := testPayload(10_000)
	in := installFor(data, "sha256")
	r := verify.NewPayloadReader(bytes.NewReader(data), in, verify.PayloadOptions{})
	io.CopyN(io.Discard, r, 4000)
	cp, off, err := r.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(data)
	tampered[6000] ^= 1
	rest, err := verify.ResumePayloadReader(bytes.NewReader(tampered[off:]), in, cp, verify.PayloadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rest)
	wantErr(t, err, trust.ErrMismatch)

	other := installFor(testPayload(10_001), "sha256")
	for name, c := range map[string]struct {
		in verify.Install
		cp []byte
	}{
		"other target":  {other, cp},
		"truncated":     {in, cp[:len(cp)-1]},
		"trailing byte": {in, append(bytes.Clone(cp), 0)},
		"other format":  {in, append([]byte("XXXX"), cp[4:]...)},
		"empty":         {in, nil},
	} {
		if _, err := verify.ResumePayloadReader(bytes.NewReader(nil), c.in, c.cp, verify.PayloadOptions{}); !errors.Is(err, trust.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

// readAll reads with a fixed buffer size (io.ReadAll starts small, which
// would throttle a chunked reader by itself).
func readAll(r io.Reader, size int) ([]byte, error) {
	var out []byte
	buf := make([]byte, size)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}
