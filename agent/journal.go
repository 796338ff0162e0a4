package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
)

// JournalVersion is the journal format this package writes and accepts.
const JournalVersion = 1

// MaxJournalSize bounds the journal file. A full outbox of MaxEvents events
// with maximal fields stays below it.
const MaxJournalSize = 512 << 10

// Journal is the engine's persistent state: the transaction in progress (or
// the last finished one), what is installed, and the reports not yet
// delivered. It is written as a whole, atomically, at every transition.
type Journal struct {
	Version int          `json:"version"`
	Tx      *Transaction `json:"tx,omitempty"`
	// Installed maps component → what was last committed.
	Installed map[string]Installed `json:"installed,omitempty"`
	// Outbox holds reports not yet accepted by the server, oldest first.
	Outbox []deviceapi.Event `json:"outbox,omitempty"`
	// FailedVerifications counts rejected updates (reported, CCDS SSS01).
	FailedVerifications uint32 `json:"failed_verifications,omitempty"`
	// Blocked is the SHA-256 of the last target that was rolled back; the
	// engine does not install it again on its own (a reboot loop must not
	// turn into an install loop). A new release has another digest.
	Blocked string `json:"blocked,omitempty"`
}

// Installed is a committed component.
type Installed struct {
	Target         string `json:"target"`
	Version        string `json:"version"`
	ReleaseCounter uint64 `json:"release_counter"`
	SHA256         string `json:"sha256"`
	// Length is the image's length in bytes. Only the factory list
	// (Config.Factory) sets it, so that the slot check can verify the
	// factory image before the first update; the journal never holds it.
	Length int64 `json:"length,omitempty"`
}

// Transaction is one update, from the first downloaded byte to committed,
// rolled-back or failed. It carries everything needed to resume.
type Transaction struct {
	ID    string `json:"id"`
	State State  `json:"state"`
	// Target is the verified instruction; its signed length, hashes and
	// release counter (the counter to store at commit) drive every check.
	Target Target `json:"target"`
	// Slot is the slot being written (A/B installers); FromSlot the slot
	// that was booted and committed when the transaction began.
	Slot     string `json:"slot,omitempty"`
	FromSlot string `json:"from_slot,omitempty"`
	// Offset and Checkpoint: payload bytes durably stored and the hash
	// state after them.
	Offset     int64  `json:"offset"`
	Checkpoint []byte `json:"checkpoint,omitempty"`
	// Written is what the sink stored, recorded at verifying.
	Written *Digest `json:"written,omitempty"`
	// Attempts counts downloads restarted from scratch after a failed
	// read-back.
	Attempts int `json:"attempts,omitempty"`
	// Healthy is set once the health check passed on the new image, before
	// the bootloader commit, so a power cut in between finishes the commit
	// instead of re-judging the image.
	Healthy bool      `json:"healthy,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Detail  string    `json:"detail,omitempty"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
}

// LoadJournal decodes and validates a journal file. Any defect — size,
// syntax, unknown fields, trailing data, a value out of range — returns an
// error wrapping ErrCorruptJournal and no journal, so a damaged file can
// never be mistaken for a transaction that switches the bootloader.
func LoadJournal(data []byte) (*Journal, error) {
	if len(data) > MaxJournalSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrCorruptJournal, len(data), MaxJournalSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var j Journal
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptJournal, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrCorruptJournal)
	}
	if err := j.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptJournal, err)
	}
	return &j, nil
}

// Marshal validates and encodes j.
func (j *Journal) Marshal() ([]byte, error) {
	if err := j.Validate(); err != nil {
		return nil, fmt.Errorf("agent: refusing to write invalid journal: %w", err)
	}
	b, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxJournalSize {
		return nil, fmt.Errorf("agent: journal of %d bytes exceeds %d", len(b), MaxJournalSize)
	}
	return b, nil
}

// Validate checks every field.
func (j *Journal) Validate() error {
	if j.Version != JournalVersion {
		return fmt.Errorf("%w: journal version %d", trust.ErrInvalid, j.Version)
	}
	if len(j.Installed) > deviceapi.MaxComponents {
		return fmt.Errorf("%w: too many installed components", trust.ErrInvalid)
	}
	for name, in := range j.Installed {
		if err := in.validate(name); err != nil {
			return err
		}
	}
	if len(j.Outbox) > deviceapi.MaxEvents {
		return fmt.Errorf("%w: outbox holds more than %d events", trust.ErrInvalid, deviceapi.MaxEvents)
	}
	for i := range j.Outbox {
		if err := j.Outbox[i].Validate(); err != nil {
			return err
		}
	}
	if j.Blocked != "" {
		if err := validHex("sha256", j.Blocked); err != nil {
			return err
		}
	}
	if j.Tx != nil {
		return j.Tx.validate()
	}
	return nil
}

func (in *Installed) validate(component string) error {
	if err := trust.ValidateID("component", component); err != nil {
		return err
	}
	if len(in.Target) > maxTargetName || len(in.Version) > 128 || in.ReleaseCounter > trust.MaxReleaseCounter ||
		in.Length < 0 || in.Length > MaxPayloadLength*16 {
		return fmt.Errorf("%w: installed %s out of range", trust.ErrInvalid, component)
	}
	if in.SHA256 != "" {
		return validHex("sha256", in.SHA256)
	}
	return nil
}

func (tx *Transaction) validate() error {
	if err := trust.ValidateID("transaction ID", tx.ID); err != nil {
		return err
	}
	if !tx.State.persisted() {
		return fmt.Errorf("%w: transaction state %q", trust.ErrInvalid, tx.State)
	}
	if err := tx.Target.Validate(); err != nil {
		return err
	}
	if err := validSlotName(tx.Slot); err != nil {
		return err
	}
	if err := validSlotName(tx.FromSlot); err != nil {
		return err
	}
	if (tx.Slot == "") != (tx.FromSlot == "") {
		return fmt.Errorf("%w: slot and from_slot must be set together", trust.ErrInvalid)
	}
	if tx.Slot != "" && tx.Slot == tx.FromSlot {
		return fmt.Errorf("%w: transaction writes the slot it started from", trust.ErrInvalid)
	}
	if tx.Offset < 0 || tx.Offset > tx.Target.Length || len(tx.Checkpoint) > maxCheckpoint {
		return fmt.Errorf("%w: offset %d or checkpoint out of range", trust.ErrInvalid, tx.Offset)
	}
	if (tx.Offset > 0) != (len(tx.Checkpoint) > 0) {
		return fmt.Errorf("%w: offset and checkpoint disagree", trust.ErrInvalid)
	}
	if tx.Written != nil {
		if err := tx.Written.validate(); err != nil {
			return err
		}
	}
	if tx.Attempts < 0 || tx.Attempts > 100 || len(tx.Reason) > maxReason || len(tx.Detail) > maxDetail {
		return fmt.Errorf("%w: transaction fields out of range", trust.ErrInvalid)
	}
	return nil
}

func validSlotName(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 16 {
		return fmt.Errorf("%w: slot name too long", trust.ErrInvalid)
	}
	return trust.ValidateID("slot", s)
}
