package koshin_test

import (
	"path"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin"
)

func TestValidateBlobName(t *testing.T) {
	for _, ok := range []string{
		"timestamp.json", "1.root.json", "targets/0123abcd.fw-1.2+build_3.img",
		"a/b/c", "A", strings.Repeat("a", koshin.MaxBlobSegmentLen),
		strings.Repeat("abcdefgh/", 99) + "abcdefgh", // 899 bytes
	} {
		if err := koshin.ValidateBlobName(ok); err != nil {
			t.Errorf("ValidateBlobName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{
		"", "/", "/a", "a/", "a//b", ".", "..", "../a", "a/..", "a/./b", ".a", "a/.b", "-a", "_a", "+a",
		"a b", `a\b`, "a\x00", "a\n", "é", "a?b", "a#b", "a%2Fb", "a:b", "a*b",
		strings.Repeat("a", koshin.MaxBlobSegmentLen+1),
		strings.Repeat("abcdefgh/", 100) + "abcdefgh", // 908 bytes
	} {
		err := koshin.ValidateBlobName(bad)
		if koshin.ErrorCode(err) != koshin.EINVALID {
			t.Errorf("ValidateBlobName(%q) = %v, want EINVALID", bad, err)
		}
	}
}

func TestValidateBlobPrefix(t *testing.T) {
	for _, ok := range []string{"", "a", "a/", "targets/ab", "1."} {
		if err := koshin.ValidateBlobPrefix(ok); err != nil {
			t.Errorf("ValidateBlobPrefix(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"/", "//", "a//", "../", "./", "/a", ".x"} {
		if koshin.ErrorCode(koshin.ValidateBlobPrefix(bad)) != koshin.EINVALID {
			t.Errorf("ValidateBlobPrefix(%q) accepted", bad)
		}
	}
}

// A valid name is a clean relative path that stays below its directory
// and is its own URL path escape.
func FuzzValidateBlobName(f *testing.F) {
	for _, s := range []string{"targets/a.img", "../x", "a//b", "a/./b", ".x", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if koshin.ValidateBlobName(name) != nil {
			return
		}
		if path.Clean(name) != name || path.IsAbs(name) || strings.HasPrefix(name, "..") || len(name) > koshin.MaxBlobNameLen {
			t.Fatalf("accepted unsafe name %q", name)
		}
		for _, seg := range strings.Split(name, "/") {
			if seg == "" || seg[0] == '.' || seg == ".." {
				t.Fatalf("accepted name %q with segment %q", name, seg)
			}
		}
	})
}
