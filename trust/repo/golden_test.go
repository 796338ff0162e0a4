package repo_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/trust"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

// With fixed Ed25519 seeds and a fixed clock the published metadata of a
// small repository is byte-for-byte stable: any change to what koshin signs
// (field names, encoding, expiry rules, floors) shows up as a diff here.
// Regenerate with: go test ./trust/repo -run TestGolden -update
func TestGolden(t *testing.T) {
	f := committed(t)
	c := trust.TargetCustom{
		HardwareIDs: []string{"board-a", "board-b"}, Component: "rootfs", ReleaseCounter: 1, Version: "1.0.0",
		Channel: trust.ChannelRelease, Security: true, Advisories: []string{"KOSHIN-2026-001"}, SupportEnd: "2030-12-31",
	}
	must(t, f.r.AddTarget("hello.bin", strings.NewReader("hello, koshin\n"), c, nil))
	must(t, f.r.Sign("targets", f.targets))
	f.r.Now = func() time.Time { return testNow.Add(time.Hour) }
	_, err := f.r.Commit(testNow.Add(time.Hour), f.online())
	must(t, err)

	c.ReleaseCounter, c.Version, c.Security, c.Advisories = 2, "1.0.1", false, nil
	must(t, f.r.AddTarget("hello-2.bin", strings.NewReader("hello again\n"), c, nil))
	must(t, f.r.Revoke("hello.bin"))
	must(t, f.r.Sign("targets", f.targets))
	_, err = f.r.Commit(testNow.Add(2*time.Hour), f.online())
	must(t, err)

	out := t.TempDir()
	must(t, f.r.Publish(out))
	got := map[string][]byte{}
	for _, name := range []string{"1.root.json", "root.json", "3.targets.json", "3.snapshot.json", "timestamp.json"} {
		b, err := os.ReadFile(filepath.Join(out, name))
		must(t, err)
		got[name] = b
	}
	got["targets.list"] = listDir(t, filepath.Join(out, "targets"))

	must(t, f.r.Stage("root"))
	must(t, f.r.AddKey("targets", edKey(5).Public(), ""))
	must(t, f.r.SetThreshold("targets", 2))
	st, err := f.r.Status()
	must(t, err)
	got["status.txt"] = []byte(st.String())

	compareGolden(t, got)
}

func listDir(t *testing.T, dir string) []byte {
	entries, err := os.ReadDir(dir)
	must(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return []byte(strings.Join(names, "\n") + "\n")
}

func compareGolden(t *testing.T, got map[string][]byte) {
	t.Helper()
	dir := filepath.Join("testdata", "golden")
	for name, b := range got {
		path := filepath.Join(dir, name)
		if *update {
			must(t, os.WriteFile(path, b, 0o644))
			continue
		}
		want, err := os.ReadFile(path)
		must(t, err)
		if !bytes.Equal(b, want) {
			t.Errorf("%s differs from %s (run with -update if the change is intended):\n%s", name, path, b)
		}
	}
}
