package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/koshin-ota/koshin/s3"
	"github.com/koshin-ota/koshin/trust/verify"
)

// execPublishS3 runs a command line with `repo publish-s3` available and
// the given environment, and returns stdout, stderr and the exit status.
func (c *cli) execPublishS3(env map[string]string, args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	m := c.main(&out, &errOut)
	m.Getenv = func(k string) string { return env[k] }
	root := m.rootCmd()
	for _, sub := range root.Commands() {
		if sub.Name() != "repo" {
			continue
		}
		if found, _, err := sub.Find([]string{"publish-s3"}); err != nil || found == sub {
			sub.AddCommand(newRepoPublishS3Cmd(m))
		}
	}
	root.SetArgs(append([]string{"--repo", c.repo}, args...))
	root.SetOut(&out)
	root.SetErr(&errOut)
	if err := root.Execute(); err != nil {
		errOut.WriteString("koshin: " + err.Error() + "\n")
		var ue usageError
		if errors.As(err, &ue) || cobraUsage(err) {
			return out.String(), errOut.String(), 2
		}
		return out.String(), errOut.String(), 1
	}
	return out.String(), errOut.String(), 0
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// The release flow into a bucket: publish locally, upload, and a device
// walks the metadata from the bucket and downloads the payload through a
// presigned URL with the verifying reader.
func TestCLIPublishS3(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("updates"); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(gofakes3.New(backend).Server())
	defer ts.Close()
	env := map[string]string{envS3AccessKey: randomHex(t, 10), envS3SecretKey: randomHex(t, 20)}

	c := newCLI(t)
	c.setup()
	image := c.write("rootfs.img", bytes.Repeat([]byte("image "), 50000))
	c.ok("release", "add", image, "--name", "rootfs-1.img", "--hardware-id", "board-a",
		"--component", "rootfs", "--counter", "1", "--version", "1.0.0")
	c.ok("repo", "sign", "--role", "targets", "--key", c.key("targets"))
	pub := filepath.Join(c.dir, "pub")
	c.ok("repo", "publish", "--dir", pub)

	args := []string{"repo", "publish-s3", "--dir", pub, "--endpoint", ts.URL, "--bucket", "updates",
		"--prefix", "image/", "--region", "us-east-1", "--path-style"}
	out, errOut, code := c.execPublishS3(env, args...)
	if code != 0 {
		t.Fatalf("publish-s3: exit %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[len(lines)-2], "uploaded timestamp.json") ||
		!strings.Contains(lines[len(lines)-1], "to s3://updates/image/") {
		t.Fatalf("publish-s3 output:\n%s", out)
	}

	store, err := s3.Open(s3.Config{Endpoint: ts.URL, Region: "us-east-1", Bucket: "updates", Prefix: "image/",
		AccessKey: env[envS3AccessKey], SecretKey: env[envS3SecretKey], PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	tm := walkPublished(t, mirror(t, store), 1)
	tf := tm.Targets["targets"].Signed.Targets["rootfs-1.img"]
	name := "targets/" + hex.EncodeToString(tf.Hashes["sha256"]) + ".rootfs-1.img"
	u, err := store.PresignGet(context.Background(), name, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := (&verify.HTTPFetcher{}).Open(context.Background(), u, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	in := verify.Install{Name: "rootfs-1.img", Length: tf.Length, Hashes: map[string][]byte{}}
	for alg, h := range tf.Hashes {
		in.Hashes[alg] = h
	}
	if n, err := io.Copy(io.Discard, verify.NewPayloadReader(rc, in, verify.PayloadOptions{})); err != nil || n != tf.Length {
		t.Fatalf("verified download from the bucket: %d bytes, %v", n, err)
	}

	// Again: nothing to upload.
	out, errOut, code = c.execPublishS3(env, args...)
	if code != 0 || strings.Contains(out, "uploaded ") || !strings.Contains(out, "published 0 files") {
		t.Fatalf("second publish-s3: exit %d\n%s%s", code, out, errOut)
	}
}

// mirror copies every blob of store into a new directory.
func mirror(t *testing.T, store *s3.Store) string {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	for bi, err := range store.List(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		rc, _, err := store.Open(ctx, bi.Name, 0)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(bi.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCLIPublishS3Refusals(t *testing.T) {
	c := newCLI(t)
	creds := map[string]string{envS3AccessKey: randomHex(t, 10), envS3SecretKey: randomHex(t, 20)}
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"no credentials", nil, []string{"--endpoint", "https://s3.example.com", "--bucket", "b-1", "--dir", c.dir}, 2, envS3AccessKey},
		{"plain http", creds, []string{"--endpoint", "http://s3.example.com", "--bucket", "b-1", "--dir", c.dir}, 2, "plain http"},
		{"missing flag", creds, []string{"--endpoint", "https://s3.example.com", "--dir", c.dir}, 2, "bucket"},
	} {
		out, errOut, code := c.execPublishS3(tt.env, append([]string{"repo", "publish-s3"}, tt.args...)...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("%s: exit %d, want %d with %q\n%s%s", tt.name, code, tt.code, tt.want, out, errOut)
		}
		if strings.Contains(out+errOut, creds[envS3SecretKey]) {
			t.Errorf("%s: output shows the secret key", tt.name)
		}
	}
}
