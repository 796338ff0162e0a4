package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/koshin-ota/koshin/agent"
)

// stagingDir is where a transaction's payload and bookkeeping live until
// commit or rollback: WORK/<transaction ID>/.
func stagingDir(work string, tx *agent.Transaction) string { return filepath.Join(work, tx.ID) }

const payloadFile = "payload"

// openStaging opens the staging file for writing at offset. Bytes before
// offset were synced before the checkpoint that names offset was written,
// so a file shorter than offset means the checkpoint cannot be trusted.
func openStaging(work string, tx *agent.Transaction, offset int64) (agent.Sink, error) {
	dir := stagingDir(work, tx)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, payloadFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() < offset {
		err = fmt.Errorf("%w: staged %d bytes, checkpoint at %d", agent.ErrNoResume, fi.Size(), offset)
	}
	if err == nil {
		err = f.Truncate(offset)
	}
	if err == nil {
		_, err = f.Seek(offset, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &stagingSink{f: f, n: offset}, nil
}

type stagingSink struct {
	f *os.File
	n int64
}

func (s *stagingSink) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	s.n += int64(n)
	return n, err
}

func (s *stagingSink) Sync() error { return s.f.Sync() }

func (s *stagingSink) Finish() (agent.Digest, error) {
	err := s.f.Sync()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return agent.Digest{Length: s.n}, err
}

func (s *stagingSink) Abort() error { return s.f.Close() }

// verifyStaged hashes the staged file against the signed digest (of the
// plaintext, for an encrypted release): the stream was verified, this
// proves the file still holds it (including bytes written before a
// restart).
func verifyStaged(_ context.Context, work string, tx *agent.Transaction) error {
	f, err := os.Open(filepath.Join(stagingDir(work, tx), payloadFile))
	if err != nil {
		return fmt.Errorf("%w: %v", agent.ErrSlotMismatch, err)
	}
	defer f.Close()
	want := tx.Target.Plain()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, want.Length+1))
	if err != nil {
		return err
	}
	if n != want.Length || hex.EncodeToString(h.Sum(nil)) != want.SHA256 {
		return fmt.Errorf("%w: staged payload differs from the signed digest", agent.ErrSlotMismatch)
	}
	return nil
}

// syncDir fsyncs a directory so that entries created in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
