package agent

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"

	"github.com/koshin-ota/koshin/trust"
)

// Counter is the persisted anti-rollback counter: per component, the
// release counter of the last committed image (CCDS UPE03, UPC02). It is the
// last line under TUF versions and the signed release counter; the engine
// advances it only after the bootloader made the new slot permanent, and
// refuses targets below it.
type Counter interface {
	// Get returns component's counter (0 if it never advanced).
	Get(component string) (uint64, error)
	// Advance raises component's counter to n. Equal or lower n is a
	// no-op, not an error, so a commit resumed after a power cut can repeat
	// it; the counter never goes down.
	Advance(component string, n uint64) error
}

// FileCounter keeps the counters in two copies, each a small JSON record
// with a sequence number and a MAC. Writes alternate between the copies
// (like U-Boot's redundant environment), so one damaged copy still leaves
// the previous value, and the highest valid sequence wins on reading.
//
// With Key set the MAC is HMAC-SHA256 under that device-local key (keep it
// outside the state directory, e.g. derived from the device key or a
// secure element), which detects edits by anyone without the key. Without
// Key it is plain SHA-256, which detects corruption only. Neither detects
// the state directory being restored wholesale from an old copy; that needs
// a TPM NV counter behind the same interface.
type FileCounter struct {
	FS  StateFS
	Key []byte
}

var counterFiles = [2]string{"counter.0", "counter.1"}

type counterRecord struct {
	Seq      uint64            `json:"seq"`
	Counters map[string]uint64 `json:"counters"`
	MAC      string            `json:"mac"`
}

// Get returns component's counter.
func (c *FileCounter) Get(component string) (uint64, error) {
	rec, _, err := c.load()
	if err != nil {
		return 0, err
	}
	return rec.Counters[component], nil
}

// Advance raises component's counter to n.
func (c *FileCounter) Advance(component string, n uint64) error {
	if err := trust.ValidateID("component", component); err != nil {
		return err
	}
	if n > trust.MaxReleaseCounter {
		return fmt.Errorf("%w: counter %d out of range", trust.ErrInvalid, n)
	}
	rec, slot, err := c.load()
	if err != nil {
		return err
	}
	if rec.Counters[component] >= n {
		return nil
	}
	if rec.Seq == math.MaxUint64 {
		return fmt.Errorf("%w: sequence exhausted", ErrCorruptCounter) // 2^64 writes: not a real device
	}
	next := counterRecord{Seq: rec.Seq + 1, Counters: maps.Clone(rec.Counters)}
	if next.Counters == nil {
		next.Counters = map[string]uint64{}
	}
	next.Counters[component] = n
	next.MAC = c.mac(&next)
	b, err := json.Marshal(next)
	if err != nil {
		return err
	}
	// Write the copy not holding the current value, so that the current
	// value survives whatever happens to this write.
	return c.FS.WriteFile(counterFiles[1-slot], b)
}

// load returns the newest valid record and the index of its file. No file
// at all is a fresh device (all zero); files that exist but fail their
// check are ErrCorruptCounter, never silently zero.
func (c *FileCounter) load() (counterRecord, int, error) {
	var best counterRecord
	bestSlot, valid, present := 1, 0, 0
	for i, name := range counterFiles {
		b, err := c.FS.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return best, 0, fmt.Errorf("read counter: %w", err)
		}
		present++
		rec, ok := c.parse(b)
		if !ok {
			continue
		}
		if valid == 0 || rec.Seq > best.Seq {
			best, bestSlot = rec, i
		}
		valid++
	}
	if present > 0 && valid == 0 {
		return best, 0, ErrCorruptCounter
	}
	return best, bestSlot, nil
}

func (c *FileCounter) parse(b []byte) (counterRecord, bool) {
	var rec counterRecord
	if len(b) > 64<<10 || json.Unmarshal(b, &rec) != nil || len(rec.Counters) > 64 {
		return rec, false
	}
	for _, n := range rec.Counters {
		if n > trust.MaxReleaseCounter {
			return rec, false
		}
	}
	return rec, hmac.Equal([]byte(rec.MAC), []byte(c.mac(&rec)))
}

func (c *FileCounter) mac(rec *counterRecord) string {
	body, _ := json.Marshal(counterRecord{Seq: rec.Seq, Counters: rec.Counters})
	if len(c.Key) == 0 {
		sum := sha256.Sum256(body)
		return hex.EncodeToString(sum[:])
	}
	m := hmac.New(sha256.New, c.Key)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}
