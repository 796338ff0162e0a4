package password_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/password"
)

// cheap keeps tests fast; production uses DefaultParams.
var cheap = password.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestHashVerify(t *testing.T) {
	pw := password.Generate()
	h, err := password.Hash(pw, cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("unexpected encoding %q", h)
	}
	if ok, err := password.Verify(h, pw); !ok || err != nil {
		t.Fatalf("Verify(right) = %v, %v", ok, err)
	}
	if ok, err := password.Verify(h, pw+"x"); ok || err != nil {
		t.Fatalf("Verify(wrong) = %v, %v", ok, err)
	}
	h2, _ := password.Hash(pw, cheap)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
}

// TestReferenceVector checks interoperability with the Argon2 reference
// implementation's Argon2id test vector (password "password", salt
// "somesalt", t=2, m=64 MiB, p=1).
func TestReferenceVector(t *testing.T) {
	const ref = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	ok, err := password.Verify(ref, "password")
	if !ok || err != nil {
		t.Fatalf("reference vector: %v, %v", ok, err)
	}
}

func TestMalformed(t *testing.T) {
	good, _ := password.Hash("a long enough password", cheap)
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	bad := []string{
		"",
		"$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=4194304,t=1,p=1$" + salt + "$" + key, // 4 GiB: refused, not allocated
		"$argon2id$v=19$m=64,t=1000,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=255$" + salt + "$" + key,
		"$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$YQ$" + key, // 1-byte salt
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$YWJj",
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$",
		good + strings.Repeat("A", 600),
	}
	for _, h := range bad {
		ok, err := password.Verify(h, "a long enough password")
		if ok || !errors.Is(err, password.ErrMalformed) {
			t.Errorf("Verify(%q) = %v, %v; want ErrMalformed", h, ok, err)
		}
	}
}

func TestNeedsRehash(t *testing.T) {
	h, _ := password.Hash("a long enough password", cheap)
	if password.NeedsRehash(h, cheap) {
		t.Error("same params need rehash")
	}
	stronger := cheap
	stronger.Time = 2
	if !password.NeedsRehash(h, stronger) {
		t.Error("stronger params do not need rehash")
	}
	if !password.NeedsRehash("garbage", cheap) {
		t.Error("malformed hash does not need rehash")
	}
}

func TestHashRefusesBadParams(t *testing.T) {
	if _, err := password.Hash("x", password.Params{Memory: 1 << 30, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}); err == nil {
		t.Fatal("accepted 1 TiB of memory")
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		pw, account string
		ok          bool
	}{
		{"short", "", false},
		{strings.Repeat("a", 20), "", false},
		{"alice-is-my-password", "Alice", false},
		{strings.Repeat("ab", 600), "", false},
		{"\xff\xfe invalid utf8 here", "", false},
		{"パスワードはとても長いです", "", true},
		{password.Generate(), "alice", true},
	} {
		err := password.Validate(tc.pw, tc.account)
		if (err == nil) != tc.ok {
			t.Errorf("Validate(%q, %q) = %v, want ok=%v", tc.pw, tc.account, err, tc.ok)
		}
		if err != nil && !errors.Is(err, password.ErrPolicy) {
			t.Errorf("error %v does not wrap ErrPolicy", err)
		}
	}
}

func TestGenerate(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		p := password.Generate()
		if len(p) != 20 || seen[p] || password.Validate(p, "") != nil {
			t.Fatalf("bad generated password %q", p)
		}
		seen[p] = true
	}
}

func FuzzVerify(f *testing.F) {
	good, _ := password.Hash("a long enough password", cheap)
	f.Add(good, "a long enough password")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$AAAA$AAAA", "")
	f.Fuzz(func(t *testing.T, encoded, pw string) {
		// Bound the work per input: only hashes within cheap-ish bounds run.
		if strings.Contains(encoded, "m=") && !strings.Contains(encoded, "m=64,") {
			return
		}
		password.Verify(encoded, pw)
	})
}
