package identity

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/koshin-ota/koshin/internal/atomicfile"
)

// readFull reads until b is full or EOF; unlike io.ReadFull a short file
// is not an error.
func readFull(r io.Reader, b []byte) (int, error) {
	n, err := io.ReadFull(r, b)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}

// Erase destroys the identity: both keys (overwritten, then removed), the
// certificate and the enrollment record. It returns the paths it deleted;
// files already absent are skipped, so Erase can be repeated after a power
// cut.
func (s Store) Erase() ([]string, error) {
	var deleted []string
	for _, name := range []string{KeyFile, EncryptionKeyFile, CertFile, EnrollmentFile} {
		p := s.path(name)
		ok, err := Destroy(p)
		if err != nil {
			return deleted, err
		}
		if ok {
			deleted = append(deleted, p)
		}
	}
	return deleted, nil
}

// Rotate erases the identity and generates a new one: a new key pair, so a
// new device ID that must enroll again.
func (s Store) Rotate() (*Identity, []string, error) {
	deleted, err := s.Erase()
	if err != nil {
		return nil, deleted, err
	}
	id, err := s.Generate()
	return id, deleted, err
}

// Destroy overwrites a regular file with random bytes, syncs it, removes
// it and syncs its directory: a key destroyed this way cannot be read back
// through the file system, even from a copy-on-write snapshot taken later
// (crypto-erase, CCDS STS08). It reports whether there was a file.
// Symbolic links are removed without touching their target.
func Destroy(path string) (bool, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if fi.Mode().IsRegular() {
		if err := overwrite(path, fi.Size()); err != nil {
			return false, err
		}
	}
	if err := os.Remove(path); err != nil {
		return false, err
	}
	return true, atomicfile.SyncDir(filepath.Dir(path))
}

func overwrite(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("destroy %s: %w", path, err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		return fmt.Errorf("destroy %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("destroy %s: %w", path, err)
	}
	return nil
}
