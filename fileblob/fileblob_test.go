package fileblob_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/blobtest"
	"github.com/koshin-ota/koshin/fileblob"
)

func open(t *testing.T) *fileblob.Store {
	t.Helper()
	s, err := fileblob.Open(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) koshin.BlobStore { return open(t) })
}

// A crash between creating the temporary file and renaming it leaves a dot
// file; it is not a blob and List does not show it.
func TestLeftoverTempFileIgnored(t *testing.T) {
	s := open(t)
	blobtest.MustPut(t, s, "targets/a", []byte("a"))
	if err := os.WriteFile(filepath.Join(s.Dir(), "targets", ".b.tmp-0123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	var got []string
	for bi, err := range s.List(context.Background(), "") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, bi.Name)
	}
	if !slices.Equal(got, []string{"targets/a"}) {
		t.Fatalf("List = %q, want [targets/a]", got)
	}
}

// Put leaves no temporary file behind, whether it succeeds or fails.
func TestNoTempFilesLeft(t *testing.T) {
	s := open(t)
	blobtest.MustPut(t, s, "d/x", []byte("x"))
	err := s.Put(context.Background(), "d/y", strings.NewReader("too long"), 3)
	blobtest.WantCode(t, err, koshin.EINVALID, "long stream")
	ents, err := os.ReadDir(filepath.Join(s.Dir(), "d"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "x" {
		t.Fatalf("directory holds %v, want only x", ents)
	}
}

// A name cannot be both a blob and a directory of blobs in a file store.
func TestNameAndChildrenConflict(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	blobtest.MustPut(t, s, "a", []byte("a"))
	err := s.Put(ctx, "a/b", strings.NewReader("b"), 1)
	blobtest.WantCode(t, err, koshin.ECONFLICT, "Put below a blob")
	blobtest.MustPut(t, s, "c/d", []byte("d"))
	err = s.Put(ctx, "c", strings.NewReader("c"), 1)
	blobtest.WantCode(t, err, koshin.ECONFLICT, "Put over a directory of blobs")
	if err := s.Delete(ctx, "c"); err != nil {
		t.Fatalf("Delete of a directory name: %v", err)
	}
	if got, _ := blobtest.MustRead(t, s, "c/d", 0); string(got) != "d" {
		t.Fatalf("c/d = %q after Delete(c)", got)
	}
}

// Symlinks cannot lead outside the directory.
func TestSymlinkEscapeRefused(t *testing.T) {
	s := open(t)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(s.Dir(), "link")); err != nil {
		t.Fatal(err)
	}
	if rc, _, err := s.Open(context.Background(), "link/secret", 0); err == nil {
		rc.Close()
		t.Fatal("Open through a symlink out of the store succeeded")
	}
	if err := s.Put(context.Background(), "link/new", strings.NewReader("n"), 1); err == nil {
		t.Fatal("Put through a symlink out of the store succeeded")
	}
	if _, err := os.Stat(filepath.Join(outside, "new")); err == nil {
		t.Fatal("Put wrote outside the store")
	}
}

func TestFilePermissions(t *testing.T) {
	s := open(t)
	blobtest.MustPut(t, s, "p/q", []byte("q"))
	fi, err := os.Stat(filepath.Join(s.Dir(), "p", "q"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		t.Fatalf("blob mode %v is world-accessible", fi.Mode())
	}
}
