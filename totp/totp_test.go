package totp_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/totp"
)

// RFC 6238 Appendix B: the seeds are the ASCII digits "1234567890" repeated
// to the hash's output length.
var (
	seed1   = []byte("12345678901234567890")
	seed256 = []byte("12345678901234567890123456789012")
	seed512 = []byte("1234567890123456789012345678901234567890123456789012345678901234")
)

func TestRFC6238Vectors(t *testing.T) {
	vectors := []struct {
		unix               int64
		sha1, sha256, s512 string
	}{
		{59, "94287082", "46119246", "90693936"},
		{1111111109, "07081804", "68084774", "25091201"},
		{1111111111, "14050471", "67062674", "99943326"},
		{1234567890, "89005924", "91819424", "93441116"},
		{2000000000, "69279037", "90698825", "38618901"},
		{20000000000, "65353130", "77737706", "47863826"},
	}
	for _, v := range vectors {
		at := time.Unix(v.unix, 0)
		for _, c := range []struct {
			alg    totp.Algorithm
			secret []byte
			want   string
		}{{totp.SHA1, seed1, v.sha1}, {totp.SHA256, seed256, v.sha256}, {totp.SHA512, seed512, v.s512}} {
			p := totp.Params{Algorithm: c.alg, Digits: 8, Period: 30 * time.Second}
			got, err := totp.Code(c.secret, at, p)
			if err != nil || got != c.want {
				t.Errorf("%s at %d: got %q, %v; want %s", c.alg, v.unix, got, err, c.want)
			}
			if _, ok := totp.Verify(c.secret, c.want, at, p); !ok {
				t.Errorf("%s at %d: Verify refused the RFC code", c.alg, v.unix)
			}
		}
	}
}

// TestSixDigits: six-digit codes are the last six digits of the eight.
func TestSixDigits(t *testing.T) {
	got, _ := totp.Code(seed1, time.Unix(59, 0), totp.Default)
	if got != "287082" {
		t.Fatalf("got %s, want 287082", got)
	}
}

func TestVerifySkew(t *testing.T) {
	secret := totp.NewSecret()
	now := time.Unix(1_800_000_000, 0)
	p := totp.Default
	code, _ := totp.Code(secret, now, p)
	if step, ok := totp.Verify(secret, code, now.Add(30*time.Second), p); !ok || step != p.Step(now) {
		t.Fatalf("one step late: %d %v", step, ok)
	}
	if _, ok := totp.Verify(secret, code, now.Add(90*time.Second), p); ok {
		t.Fatal("three steps late accepted")
	}
	strict := p
	strict.Skew = 0
	if _, ok := totp.Verify(secret, code, now.Add(30*time.Second), strict); ok {
		t.Fatal("skew 0 accepted the previous step")
	}
	for _, bad := range []string{"", "12345", "1234567", "12a456", "١٢٣٤٥٦"} {
		if _, ok := totp.Verify(secret, bad, now, p); ok {
			t.Errorf("accepted %q", bad)
		}
	}
	if _, ok := totp.Verify(nil, code, now, p); ok {
		t.Error("accepted with empty secret")
	}
}

func TestBadParams(t *testing.T) {
	for _, p := range []totp.Params{
		{Algorithm: "MD5", Digits: 6, Period: 30 * time.Second},
		{Algorithm: totp.SHA1, Digits: 7, Period: 30 * time.Second},
		{Algorithm: totp.SHA1, Digits: 6, Period: 1500 * time.Millisecond},
	} {
		if _, err := totp.Code(seed1, time.Unix(0, 0), p); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}

func TestURI(t *testing.T) {
	u, err := url.Parse(totp.URI("koshin", "alice", seed1, totp.Default))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || !strings.HasSuffix(u.Path, "koshin:alice") ||
		q.Get("secret") != "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" || q.Get("digits") != "6" || q.Get("period") != "30" {
		t.Fatalf("bad URI %s", u)
	}
}
