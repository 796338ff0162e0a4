package password_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/password"
)

// fast keeps unit tests quick; Default is exercised once.
var fast = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashVerify(t *testing.T) {
	enc, err := fast.Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("encoded = %q", enc)
	}
	for pw, want := range map[string]bool{
		"correct horse battery staple":  true,
		"correct horse battery staplE":  false,
		"":                              false,
		strings.Repeat("x", 2048):       false,
		"correct horse battery staple ": false,
	} {
		ok, err := password.Verify(pw, enc)
		if err != nil || ok != want {
			t.Errorf("Verify(%.20q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	again, _ := fast.Hash("correct horse battery staple")
	if again == enc {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
}

func TestDefaultParams(t *testing.T) {
	enc, err := password.Hash("a long enough passphrase")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=65536,t=3,p=4$") {
		t.Fatalf("encoded = %q", enc)
	}
	if ok, err := password.Verify("a long enough passphrase", enc); !ok || err != nil {
		t.Fatalf("Verify = %v, %v", ok, err)
	}
	if password.NeedsRehash(enc, password.Default) || !password.NeedsRehash(enc, fast) {
		t.Fatal("NeedsRehash wrong")
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := fast.Hash("x")
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	for _, enc := range []string{
		"", "plain", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key, // 4 TiB of memory
		"$argon2id$v=19$m=64,t=100000,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=256$" + salt + "$" + key,
		"$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "=",
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:10],
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$",
		"$argon2id$v=19$m=64,t=1,p=1$" + strings.Repeat("A", 300) + "$" + key,
	} {
		if ok, err := password.Verify("x", enc); ok || !errors.Is(err, password.ErrMalformed) {
			t.Errorf("Verify(%q) = %v, %v; want ErrMalformed", enc, ok, err)
		}
	}
	if _, err := (password.Params{Memory: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32}).Hash("x"); err == nil {
		t.Error("hashed with zero passes")
	}
}

// FuzzDecode: no encoded hash panics Decode or Verify or makes them exceed
// the parameter bounds.
func FuzzDecode(f *testing.F) {
	good, _ := fast.Hash("x")
	f.Add(good)
	f.Add("$argon2id$v=19$m=1048577,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, enc string) {
		p, salt, key, err := password.Decode(enc)
		if err != nil {
			return
		}
		if p.Memory > 1<<20 || p.Time > 64 || p.Threads == 0 || len(salt) < 8 || len(key) < 16 {
			t.Fatalf("Decode accepted out-of-bounds %+v", p)
		}
		if p.Memory <= 4096 && p.Time <= 4 {
			password.Verify("x", enc)
		}
	})
}

func TestCheck(t *testing.T) {
	if err := password.Check("alice", "correct horse battery staple"); err != nil {
		t.Fatal(err)
	}
	if err := password.Check("alice", "ÄÖÜäöüßÄÖÜäö"); err != nil {
		t.Fatalf("12 non-ASCII characters refused: %v", err)
	}
	for _, pw := range []string{
		"short", "aaaaaaaaaaaaaaaa", "my-Alice-password-1", "Password1234", strings.Repeat("ab", 600), "\xff\xfe" + strings.Repeat("x", 12),
	} {
		if err := password.Check("alice", pw); koshin.ErrorCode(err) != koshin.EINVALID {
			t.Errorf("Check(%.20q) = %v, want EINVALID", pw, err)
		}
	}
}

func TestEqualize(t *testing.T) {
	password.Equalize("anything") // must not panic; its cost is a Verify
}
