package install_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/agent/install"
)

// FuzzArchiveInstall: whatever bytes a (signed) archive holds, unpacking
// never panics and never creates anything outside ROOT/releases.
func FuzzArchiveInstall(f *testing.F) {
	f.Add([]byte("not a tar"))
	for _, entries := range [][]entry{
		{{name: "bin/app", body: "v1"}, {name: "link", link: "bin/app", typ: '2'}},
		{{name: "out", link: "..", typ: '2'}, {name: "out/x", body: "x"}},
		{{name: "d", typ: '5'}, {name: "d/h", link: "d", typ: '1'}},
	} {
		f.Add(tarballF(entries...))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		dir := t.TempDir()
		a := &install.Archive{Root: filepath.Join(dir, "app"), Work: filepath.Join(dir, "work"), MaxEntries: 50, MaxBytes: 1 << 20}
		os.MkdirAll(a.Root, 0o755)
		tr := stage(t, a, "tx1", "f.tar", payload)
		a.Install(context.Background(), tr)
		filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			rel, _ := filepath.Rel(dir, p)
			ok := rel == "." || rel == "app" || rel == "work" || strings.HasPrefix(rel, "work"+string(filepath.Separator)) ||
				strings.HasPrefix(rel, filepath.Join("app", "releases")) || rel == filepath.Join("app", "current")
			if !ok {
				t.Fatalf("unpack created %s", rel)
			}
			return nil
		})
	})
}
