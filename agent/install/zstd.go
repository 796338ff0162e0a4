package install

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/koshin-ota/koshin/agent"
)

// zstdSink decompresses the stream into the slot. The compressed bytes are
// still unverified while they pass through the decoder; the decoder's
// memory is capped and its output lands only in the inactive slot, so a
// hostile stream can waste a write, not boot. The SHA-256 of the output is
// taken as it is written, for the read-back.
type zstdSink struct {
	pw   *io.PipeWriter
	w    agent.SlotWriter
	done chan zstdResult
}

type zstdResult struct {
	n   int64
	sum string
	err error
}

var errAborted = errors.New("install: aborted")

func newZstdSink(w agent.SlotWriter, capped io.Writer, maxWindow uint64) (*zstdSink, error) {
	pr, pw := io.Pipe()
	dec, err := zstd.NewReader(pr,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(maxWindow),
		zstd.WithDecoderMaxMemory(4*maxWindow),
		zstd.WithDecoderLowmem(true))
	if err != nil {
		w.Close()
		return nil, err
	}
	s := &zstdSink{pw: pw, w: w, done: make(chan zstdResult, 1)}
	go s.decode(dec, pr, capped)
	return s, nil
}

func (s *zstdSink) decode(dec *zstd.Decoder, pr *io.PipeReader, capped io.Writer) {
	defer dec.Close()
	h := sha256.New()
	out := &recordingWriter{w: capped}
	n, err := io.Copy(io.MultiWriter(out, h), dec)
	switch {
	case out.err != nil:
		err = out.err // the slot's own error (I/O, full), unchanged
	case err != nil:
		err = decodeError(err)
	}
	// Unblock the writer side if decoding stopped early.
	pr.CloseWithError(errOr(err, io.ErrClosedPipe))
	s.done <- zstdResult{n: n, sum: sum(h), err: err}
}

func decodeError(err error) error {
	if errors.Is(err, errAborted) {
		return err
	}
	return fmt.Errorf("%w: zstd: %v", agent.ErrUnusable, err)
}

// recordingWriter remembers its destination's error so that slot failures
// are not mistaken for a bad stream.
type recordingWriter struct {
	w   io.Writer
	err error
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}

func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

func sum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

func (s *zstdSink) Write(p []byte) (int, error) { return s.pw.Write(p) }

// Sync is never called: the engine does not checkpoint non-resumable
// downloads.
func (s *zstdSink) Sync() error { return s.w.Sync() }

func (s *zstdSink) Finish() (agent.Digest, error) {
	s.pw.Close()
	r := <-s.done
	err := r.err
	if err == nil {
		err = s.w.Sync()
	}
	if cerr := s.w.Close(); err == nil {
		err = cerr
	}
	return agent.Digest{Length: r.n, SHA256: r.sum}, err
}

func (s *zstdSink) Abort() error {
	s.pw.CloseWithError(errAborted)
	<-s.done
	return s.w.Close()
}
