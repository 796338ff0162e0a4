package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/koshin-ota/koshin/trust"
)

// Checkpoint format (version 1), all integers big-endian:
//
//	"KPR1" | offset uint64 | bind [32]byte | count uint8 |
//	count × (state length uint16 | hash state)
//
// bind is SHA-256 over the signed length and hashes, so a checkpoint cannot
// be resumed against another target. The hash states are those of
// crypto/sha256 and crypto/sha512 (encoding.BinaryMarshaler), in the
// reader's algorithm order.
const (
	checkpointMagic = "KPR1"
	maxCheckpoint   = 1024
)

// Checkpoint captures the reader's progress for the agent's journal: the
// hash states and the number of bytes passed on so far. After a power cut
// the agent keeps the first offset bytes it wrote, asks the server for the
// rest (Fetcher.Open with offset) and continues with ResumePayloadReader.
// Take it between Reads, after the bytes read so far are durably written.
func (p *PayloadReader) Checkpoint() ([]byte, int64, error) {
	if p.hashes == nil {
		return nil, 0, p.err // the reader was never valid
	}
	var b bytes.Buffer
	b.WriteString(checkpointMagic)
	binary.Write(&b, binary.BigEndian, uint64(p.n))
	b.Write(p.bind[:])
	b.WriteByte(byte(len(p.hashes)))
	for _, h := range p.hashes {
		state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return nil, 0, fmt.Errorf("checkpoint: %w", err)
		}
		binary.Write(&b, binary.BigEndian, uint16(len(state)))
		b.Write(state)
	}
	return b.Bytes(), p.n, nil
}

// ResumePayloadReader continues verifying in's payload from a checkpoint; r
// must deliver the payload from the checkpoint's offset on. A checkpoint
// that is malformed or was taken for another target fails with
// trust.ErrInvalid.
func ResumePayloadReader(r io.Reader, in Install, checkpoint []byte, opts PayloadOptions) (*PayloadReader, error) {
	p := NewPayloadReader(r, in, opts)
	if p.err != nil {
		return nil, p.err
	}
	if err := p.restore(checkpoint); err != nil {
		return nil, fmt.Errorf("%w: checkpoint: %v", trust.ErrInvalid, err)
	}
	return p, nil
}

func (p *PayloadReader) restore(cp []byte) error {
	if len(cp) > maxCheckpoint {
		return errors.New("too long")
	}
	r := bytes.NewReader(cp)
	var head struct {
		Magic  [4]byte
		Offset uint64
		Bind   [32]byte
		Count  uint8
	}
	if err := binary.Read(r, binary.BigEndian, &head); err != nil {
		return err
	}
	switch {
	case string(head.Magic[:]) != checkpointMagic:
		return errors.New("unknown format")
	case head.Bind != p.bind:
		return errors.New("taken for another target")
	case head.Offset > uint64(p.length):
		return errors.New("offset beyond the signed length")
	case int(head.Count) != len(p.hashes):
		return errors.New("hash count differs")
	}
	for _, h := range p.hashes {
		if err := restoreHash(r, h); err != nil {
			return err
		}
	}
	if r.Len() != 0 {
		return errors.New("trailing bytes")
	}
	p.n = int64(head.Offset)
	return nil
}

func restoreHash(r *bytes.Reader, h io.Writer) error {
	var n uint16
	if err := binary.Read(r, binary.BigEndian, &n); err != nil {
		return err
	}
	state := make([]byte, n)
	if _, err := io.ReadFull(r, state); err != nil {
		return err
	}
	return h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state)
}

// bindInstall identifies a target by its signed length and hashes.
func bindInstall(length int64, algs []string, want [][]byte) [32]byte {
	h := sha256.New()
	binary.Write(h, binary.BigEndian, length)
	for i, alg := range algs {
		fmt.Fprintf(h, "%s:%x;", alg, want[i])
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
