package install

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/koshin-ota/koshin/agent"
)

// unpacker extracts a verified tar archive below one directory. The archive
// is signed, but a release built by mistake (or by an insider) must still
// not write outside its directory: every path is resolved through os.Root,
// which refuses "..", absolute paths and symlinks that lead out, and
// entries other than files, directories and links are refused.
type unpacker struct {
	maxEntries int
	maxBytes   int64
	maxWindow  uint64
	entries    int
	bytes      int64
	dirs       []string
}

func (u *unpacker) defaults() {
	if u.maxEntries <= 0 {
		u.maxEntries = 100_000
	}
	if u.maxBytes <= 0 {
		u.maxBytes = 4 << 30
	}
	if u.maxWindow == 0 {
		u.maxWindow = 8 << 20
	}
}

func (u *unpacker) unpack(src io.Reader, dir string, compressed bool) error {
	u.defaults()
	if compressed {
		dec, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(u.maxWindow), zstd.WithDecoderMaxMemory(4*u.maxWindow))
		if err != nil {
			return err
		}
		defer dec.Close()
		src = dec
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(src)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return unusable("read archive: %v", err)
		}
		if err := u.entry(root, tr, hdr); err != nil {
			return err
		}
	}
	return u.syncDirs(dir)
}

func unusable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", agent.ErrUnusable, fmt.Sprintf(format, args...))
}

func (u *unpacker) entry(root *os.Root, tr *tar.Reader, hdr *tar.Header) error {
	if u.entries++; u.entries > u.maxEntries {
		return unusable("archive has more than %d entries", u.maxEntries)
	}
	if hdr.Typeflag == tar.TypeDir && path.Clean(strings.TrimPrefix(hdr.Name, "./")) == "." {
		return nil // the tree's own top directory ("./")
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		u.dirs = append(u.dirs, name)
		return root.MkdirAll(name, perm(hdr)|0o700)
	case tar.TypeReg:
		return u.file(root, tr, hdr, name)
	case tar.TypeSymlink:
		if err := u.parent(root, name); err != nil {
			return err
		}
		return root.Symlink(hdr.Linkname, name)
	case tar.TypeLink:
		target, err := cleanName(hdr.Linkname)
		if err != nil {
			return err
		}
		if err := u.parent(root, name); err != nil {
			return err
		}
		return root.Link(target, name)
	}
	return unusable("archive entry %q has unsupported type %q", hdr.Name, hdr.Typeflag)
}

func (u *unpacker) file(root *os.Root, tr *tar.Reader, hdr *tar.Header, name string) error {
	if u.bytes += hdr.Size; hdr.Size < 0 || u.bytes > u.maxBytes {
		return unusable("archive unpacks to more than %d bytes", u.maxBytes)
	}
	if err := u.parent(root, name); err != nil {
		return err
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm(hdr))
	if err != nil {
		return unusable("archive entry %q: %v", hdr.Name, err)
	}
	_, err = io.Copy(f, io.LimitReader(tr, hdr.Size))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (u *unpacker) parent(root *os.Root, name string) error {
	d := path.Dir(filepath.ToSlash(name))
	if d == "." {
		return nil
	}
	u.dirs = append(u.dirs, filepath.FromSlash(d))
	return root.MkdirAll(filepath.FromSlash(d), 0o755)
}

// syncDirs makes the new directory entries durable before the switch.
func (u *unpacker) syncDirs(dir string) error {
	seen := map[string]bool{}
	for _, d := range append(u.dirs, ".") {
		if seen[d] {
			continue
		}
		seen[d] = true
		if err := syncDir(filepath.Join(dir, d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// cleanName turns an archive path into a relative local one, refusing
// absolute paths and "..".
func cleanName(name string) (string, error) {
	c := path.Clean(strings.TrimPrefix(name, "./"))
	if c == "." || c == "" || path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") || strings.ContainsRune(c, 0) {
		return "", unusable("archive entry %q is outside the tree", name)
	}
	return filepath.FromSlash(c), nil
}

// perm keeps the permission bits only: no set-uid, set-gid or sticky bit
// from an archive.
func perm(hdr *tar.Header) os.FileMode { return os.FileMode(hdr.Mode) & 0o777 }
