package repo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/koshin-ota/koshin/internal/atomicfile"
)

// payloadInfo is what hashing a payload once yields: the length and hashes
// a target entry signs.
type payloadInfo struct {
	length int64
	sha256 []byte
}

func (p payloadInfo) name() string { return hex.EncodeToString(p.sha256) }

// copyBufSize is the chunk size of payload streaming; memory use is this
// buffer regardless of payload size.
const copyBufSize = 1 << 20

// storePayload streams src once into the content-addressed payload store,
// computing length and SHA-256 on the way. Targets are signed with SHA-256
// alone: a device checks every signed hash while it streams, so a second
// hash would halve its verification throughput without adding a defence
// SHA-256's collision resistance does not already give. The file is written to a
// temporary name, fsynced, and renamed to its SHA-256 (atomicfile.Write
// cannot be used because the final name is known only at the end).
// progress, if not nil, is called with the number of bytes read so far.
func (r *Repo) storePayload(src io.Reader, progress func(int64)) (info payloadInfo, err error) {
	f, err := os.CreateTemp(r.path(payloadsDir), ".incoming-*")
	if err != nil {
		return info, fmt.Errorf("store payload: %w", err)
	}
	defer func() {
		f.Close()
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	h256 := sha256.New()
	w := &progressWriter{w: io.MultiWriter(f, h256), fn: progress}
	// Hiding src's WriterTo keeps the copy in copyBufSize chunks, so
	// progress is reported while a large payload streams.
	if info.length, err = io.CopyBuffer(w, struct{ io.Reader }{src}, make([]byte, copyBufSize)); err != nil {
		return info, fmt.Errorf("store payload: %w", err)
	}
	// Payloads are published world-readable, possibly as hard links to
	// this very file; they are not secret (encrypted ones are ciphertext).
	if err = f.Chmod(pubFileMode); err != nil {
		return info, fmt.Errorf("store payload: %w", err)
	}
	if err = f.Sync(); err != nil {
		return info, fmt.Errorf("store payload: %w", err)
	}
	info.sha256 = h256.Sum(nil)
	if err = os.Rename(f.Name(), r.payloadPath(info.name())); err != nil {
		return info, fmt.Errorf("store payload: %w", err)
	}
	return info, atomicfile.SyncDir(r.path(payloadsDir))
}

// removeIncoming deletes payloads a crashed AddTarget left half-written.
// Only the lock holder writes them, so while the lock is held none is in
// progress.
func (r *Repo) removeIncoming() {
	leftovers, _ := filepath.Glob(r.path(payloadsDir, ".incoming-*"))
	for _, name := range leftovers {
		os.Remove(name)
	}
}

func (r *Repo) payloadPath(sha256hex string) string { return r.path(payloadsDir, sha256hex) }

// progressWriter reports the running byte count after every write.
type progressWriter struct {
	w  io.Writer
	fn func(int64)
	n  int64
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	if p.fn != nil {
		p.fn(p.n)
	}
	return n, err
}

// hashingCopy copies src to dst and fails unless the copy has the expected
// SHA-256: a damaged or altered payload store must not be published.
func hashingCopy(dst io.Writer, src io.Reader, want []byte) error {
	h := sha256.New()
	if _, err := io.CopyBuffer(io.MultiWriter(dst, h), src, make([]byte, copyBufSize)); err != nil {
		return err
	}
	return checkSum(h, want)
}

func checkSum(h hash.Hash, want []byte) error {
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return fmt.Errorf("%w: payload sha256 is %x, signed %x", ErrCorrupt, got, want)
	}
	return nil
}
