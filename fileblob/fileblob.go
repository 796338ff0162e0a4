// Package fileblob is a koshin.BlobStore on a local directory: the default
// for a single server, with nothing else to run.
//
// A blob named "targets/abc.img" is the file DIR/targets/abc.img. Every Put
// writes a temporary file next to its target (".abc.img.tmp-RANDOM"),
// fsyncs it, renames it over the target and fsyncs the directory, so after
// a crash or power cut at any instant the name holds the old content or the
// new, never a mix; readers that opened the old file keep reading it. A
// crash can leave a temporary file behind; its dot name is never a blob
// name, so List ignores it and it can be removed at leisure.
//
// All file access goes through an os.Root, so no name, symlink or bug can
// reach outside DIR. Because blobs are files and directories, the store
// cannot hold both "a" and "a/b" (S3 can); Put answers ECONFLICT.
package fileblob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"

	"github.com/koshin-ota/koshin"
)

// Modes of what the store creates: blobs are served by the server itself,
// so nobody else needs to read them.
const (
	dirMode  = 0o750
	fileMode = 0o640
)

// Store is a BlobStore on a directory. It is safe for concurrent use.
type Store struct {
	dir  string
	root *os.Root
}

var _ koshin.BlobStore = (*Store)(nil)

// Open opens the store in dir, creating the directory if needed.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("fileblob: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("fileblob: %w", err)
	}
	return &Store{dir: dir, root: root}, nil
}

// Close releases the directory.
func (s *Store) Close() error { return s.root.Close() }

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Put implements koshin.BlobStore.
func (s *Store) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := checkArgs(ctx, name); err != nil {
		return err
	}
	if size < -1 {
		return koshin.Errorf(koshin.EINVALID, "Blob %q: size %d is neither a length nor -1 (unknown).", name, size)
	}
	dir, base := path.Split(name)
	dir = path.Clean(dir) // "." for top-level names
	if err := s.makeDir(dir); err != nil {
		return s.fail("put", name, err)
	}
	tmp, err := s.createTemp(dir, base)
	if err != nil {
		return s.fail("put", name, err)
	}
	f := tmp.f
	if err := fill(ctx, f, r, size, name); err != nil {
		f.Close()
		s.root.Remove(tmp.name)
		return err
	}
	if err := s.commit(f, tmp.name, name, dir); err != nil {
		s.root.Remove(tmp.name)
		return s.fail("put", name, err)
	}
	return nil
}

type tempFile struct {
	f    *os.File
	name string
}

// createTemp makes an exclusive temporary file beside the target. Its name
// starts with a dot, so it is never a valid blob name.
func (s *Store) createTemp(dir, base string) (tempFile, error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	name := path.Join(dir, "."+base+".tmp-"+hex.EncodeToString(rnd[:]))
	if len(path.Base(name)) > koshin.MaxBlobSegmentLen {
		// Long names: the suffix must still fit in one path component.
		name = path.Join(dir, ".tmp-"+hex.EncodeToString(rnd[:]))
	}
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	return tempFile{f, name}, err
}

// fill copies exactly size bytes (or everything, for -1) from r to f.
func fill(ctx context.Context, f *os.File, r io.Reader, size int64, name string) error {
	src := io.Reader(ctxReader{ctx, r})
	if size >= 0 {
		src = io.LimitReader(src, size+1)
	}
	n, err := io.Copy(f, src)
	if err != nil {
		if ctx.Err() != nil {
			return &koshin.Error{Code: koshin.EUNAVAILABLE, Message: "The blob upload was cancelled.", Err: err}
		}
		return &koshin.Error{Code: koshin.EINVALID, Message: fmt.Sprintf("Blob %q: reading the content failed.", name), Err: err}
	}
	if size >= 0 && n != size {
		return lengthError(name, n, size)
	}
	return nil
}

func lengthError(name string, n, size int64) error {
	if n > size {
		return koshin.Errorf(koshin.EINVALID, "Blob %q: the content is longer than the announced %d bytes.", name, size)
	}
	return koshin.Errorf(koshin.EINVALID, "Blob %q: the content ended after %d of the announced %d bytes.", name, n, size)
}

// commit makes the temporary file durable and gives it its name.
func (s *Store) commit(f *os.File, tmp, name, dir string) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if fi, err := s.root.Lstat(name); err == nil && fi.IsDir() {
		return errConflict
	}
	if err := s.root.Rename(tmp, name); err != nil {
		return err
	}
	return s.syncDir(dir)
}

// errConflict: a file store cannot hold both "a" and "a/b".
var errConflict = errors.New("a blob and blobs below its name cannot coexist in a file store")

// makeDir creates dir if needed; new directories are made durable by
// syncing every ancestor, so a power cut cannot lose the path to a blob
// that Put reported as stored.
func (s *Store) makeDir(dir string) error {
	if dir == "." {
		return nil
	}
	if fi, err := s.root.Stat(dir); err == nil {
		if !fi.IsDir() {
			return errConflict
		}
		return nil
	}
	if err := s.root.MkdirAll(dir, dirMode); err != nil {
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %w", errConflict, err)
		}
		return err
	}
	for d := path.Dir(dir); ; d = path.Dir(d) {
		if err := s.syncDir(d); err != nil {
			return err
		}
		if d == "." {
			return nil
		}
	}
}

func (s *Store) syncDir(dir string) error {
	d, err := s.root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Open implements koshin.BlobStore.
func (s *Store) Open(ctx context.Context, name string, offset int64) (io.ReadCloser, int64, error) {
	if err := checkArgs(ctx, name); err != nil {
		return nil, 0, err
	}
	f, fi, err := s.openRegular(name)
	if err != nil {
		return nil, 0, s.fail("open", name, err)
	}
	size := fi.Size()
	if offset < 0 || offset > size {
		f.Close()
		return nil, 0, koshin.Errorf(koshin.EINVALID, "Blob %q: offset %d is outside its %d bytes.", name, offset, size)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, 0, s.fail("open", name, err)
	}
	return ctxReadCloser{ctxReader{ctx, f}, f}, size, nil
}

// openRegular opens name if it is a regular file; directories and other
// file types are not blobs (fs.ErrNotExist).
func (s *Store) openRegular(name string) (*os.File, fs.FileInfo, error) {
	f, err := s.root.Open(name)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrNotExist
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// Stat implements koshin.BlobStore.
func (s *Store) Stat(ctx context.Context, name string) (koshin.BlobInfo, error) {
	if err := checkArgs(ctx, name); err != nil {
		return koshin.BlobInfo{}, err
	}
	fi, err := s.root.Stat(name)
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrNotExist
	}
	if err != nil {
		return koshin.BlobInfo{}, s.fail("stat", name, err)
	}
	return koshin.BlobInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete implements koshin.BlobStore. Directories left empty stay: they
// cost nothing, and removing them would race with a concurrent Put below.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := checkArgs(ctx, name); err != nil {
		return err
	}
	fi, err := s.root.Lstat(name)
	if err != nil || fi.IsDir() {
		if err == nil || notExist(err) {
			return nil
		}
		return s.fail("delete", name, err)
	}
	if err := s.root.Remove(name); err != nil && !notExist(err) {
		return s.fail("delete", name, err)
	}
	if err := s.syncDir(path.Dir(name)); err != nil {
		return s.fail("delete", name, err)
	}
	return nil
}

// List implements koshin.BlobStore. It collects and sorts the matching
// names before yielding them, because a directory walk's order ("a/b"
// before "a.b") is not S3's byte-wise order ("a.b" before "a/b").
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[koshin.BlobInfo, error] {
	return func(yield func(koshin.BlobInfo, error) bool) {
		if err := koshin.ValidateBlobPrefix(prefix); err != nil {
			yield(koshin.BlobInfo{}, err)
			return
		}
		infos, err := s.collect(ctx, prefix)
		if err != nil {
			yield(koshin.BlobInfo{}, err)
			return
		}
		for _, bi := range infos {
			if !yield(bi, nil) {
				return
			}
		}
	}
}

func (s *Store) collect(ctx context.Context, prefix string) ([]koshin.BlobInfo, error) {
	start := "."
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i]
	}
	var out []koshin.BlobInfo
	err := fs.WalkDir(s.root.FS(), start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && notExist(err) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if p != start && !couldMatch(p+"/", prefix) {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(p, prefix) || koshin.ValidateBlobName(p) != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if notExist(err) { // deleted during the walk
				return nil
			}
			return err
		}
		out = append(out, koshin.BlobInfo{Name: p, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, s.fail("list", prefix, err)
	}
	slices.SortFunc(out, func(a, b koshin.BlobInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// couldMatch reports whether names under directory dir (ending in '/')
// can start with prefix.
func couldMatch(dir, prefix string) bool {
	return strings.HasPrefix(dir, prefix) || strings.HasPrefix(prefix, dir)
}

// checkArgs refuses invalid names and cancelled contexts before any file
// system access.
func checkArgs(ctx context.Context, name string) error {
	if err := koshin.ValidateBlobName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return &koshin.Error{Code: koshin.EUNAVAILABLE, Message: "The blob request was cancelled.", Err: err}
	}
	return nil
}

// fail maps a file-system error to a koshin error. The name is valid, so
// it is safe to show; paths and system messages stay in Err.
func (s *Store) fail(op, name string, err error) error {
	var ke *koshin.Error
	switch {
	case errors.As(err, &ke):
		return err
	case errors.Is(err, errConflict):
		return &koshin.Error{Code: koshin.ECONFLICT, Message: fmt.Sprintf("Blob %q conflicts with another blob: a file store cannot hold both a name and names below it.", name), Err: err}
	case notExist(err):
		return &koshin.Error{Code: koshin.ENOTFOUND, Message: fmt.Sprintf("Blob %q not found.", name), Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &koshin.Error{Code: koshin.EUNAVAILABLE, Message: "The blob request was cancelled.", Err: err}
	}
	return koshin.Internal(fmt.Errorf("fileblob %s %s in %s: %w", op, name, s.dir, err))
}

// notExist also treats ENOTDIR ("a/b" where "a" is a file) as missing:
// such a name cannot exist.
func notExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

type ctxReadCloser struct {
	ctxReader
	io.Closer
}
