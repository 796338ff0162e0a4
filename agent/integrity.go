package agent

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
)

// This file keeps the record behind the detection of unauthorised changes
// (EN 303 645 5.7-2; see "Unauthorised changes" in the package
// documentation): what the agent committed to each slot, and the alert
// that restricts the agent until a verified update is committed or an
// administrator clears it. detect.go holds the checks themselves.

// Reasons of tamper-detected reports and of Findings.
const (
	// TamperBootIntegrity: the secure/measured-boot hook reported "failed".
	TamperBootIntegrity = "boot-integrity"
	// TamperSlotContent: the booted slot does not hold the image the agent
	// committed there (or the factory image).
	TamperSlotContent = "slot-content"
	// TamperSlotSwitched: the device booted a slot other than the one the
	// agent last committed, with no update in flight.
	TamperSlotSwitched = "slot-switched"
	// TamperTrustedMetadata: the trust core's metadata directory failed its
	// integrity check (IntegrityConfig.Trusted).
	TamperTrustedMetadata = "trusted-metadata"
	// TamperCounter: the anti-rollback counter failed its integrity check
	// (ErrCorruptCounter).
	TamperCounter = "anti-rollback-counter"
	// TamperRecord: the integrity record itself is damaged or was edited.
	TamperRecord = "integrity-record"
)

// Reasons of alert-cleared reports.
const (
	ClearedByUpdate        = "update-committed"
	ClearedByAdministrator = "administrator"
)

var (
	// ErrRestricted is returned by operations the engine refuses while an
	// alert restricts it to the update server (offline installs).
	ErrRestricted = errors.New("agent: restricted to the update server after an unauthorised change")
	// ErrNoAlert is returned by ClearAlert when there is nothing to clear.
	ErrNoAlert = errors.New("agent: no alert to clear")
)

// Finding is one detected unauthorised change.
type Finding struct {
	Reason string    `json:"reason"`
	Detail string    `json:"detail,omitempty"`
	Time   time.Time `json:"time"`
}

// SlotImage is what the agent committed to a slot: the signed length and
// SHA-256 of the bytes the slot holds (for a decompressed image, those
// taken while writing it and checked by the read-back).
type SlotImage struct {
	Component string `json:"component"`
	Target    string `json:"target"`
	Length    int64  `json:"length"`
	SHA256    string `json:"sha256"`
}

// integrityFile is the record's file in the engine's StateFS. It is kept
// apart from the journal so that an agent of an older image, which reads
// the journal strictly, still starts after a rollback, and so that a
// journal set aside as corrupt does not take the alert with it.
const integrityFile = "integrity.json"

const (
	integrityVersion = 1
	maxFindings      = 16
	maxUnqueued      = 2*maxFindings + 2
)

// integrityRecord is integrity.json.
type integrityRecord struct {
	Version int `json:"version"`
	// Slots maps a slot name to the image the agent last committed there.
	Slots map[string]SlotImage `json:"slots,omitempty"`
	// Committed is the slot of the last committed A/B update.
	Committed string `json:"committed,omitempty"`
	// Findings is the current alert; while it is not empty the engine is
	// restricted.
	Findings []Finding `json:"findings,omitempty"`
	// Unqueued holds tamper-detected and alert-cleared reports on their way
	// to the journal's outbox. They are written here first, in the same
	// write as the change they report, then queued in the journal and
	// dropped from here; a power cut in between queues them again at the
	// next start with the same IDs, which the server stores once.
	Unqueued []deviceapi.Event `json:"unqueued,omitempty"`
	// MAC is HMAC-SHA256 of the record under IntegrityConfig.Key, or plain
	// SHA-256 without a key (detects corruption only), as for FileCounter.
	MAC string `json:"mac"`
}

func (r *integrityRecord) validate() error {
	if r.Version != integrityVersion {
		return fmt.Errorf("%w: integrity record version %d", trust.ErrInvalid, r.Version)
	}
	if len(r.Slots) > 2 || len(r.Findings) > maxFindings || len(r.Unqueued) > maxUnqueued {
		return fmt.Errorf("%w: integrity record too large", trust.ErrInvalid)
	}
	for name, img := range r.Slots {
		if err := validSlotName(name); err != nil || name == "" {
			return fmt.Errorf("%w: slot name %q", trust.ErrInvalid, name)
		}
		if err := img.validate(); err != nil {
			return err
		}
	}
	if err := validSlotName(r.Committed); err != nil {
		return err
	}
	for _, f := range r.Findings {
		if len(f.Reason) == 0 || len(f.Reason) > maxReason || len(f.Detail) > maxDetail {
			return fmt.Errorf("%w: finding out of range", trust.ErrInvalid)
		}
	}
	for i := range r.Unqueued {
		if err := r.Unqueued[i].Validate(); err != nil {
			return err
		}
	}
	return nil
}

func (s *SlotImage) validate() error {
	if err := trust.ValidateID("component", s.Component); err != nil {
		return err
	}
	if len(s.Target) > maxTargetName || s.Length <= 0 || s.Length > MaxPayloadLength*16 {
		return fmt.Errorf("%w: slot image out of range", trust.ErrInvalid)
	}
	return validHex("sha256", s.SHA256)
}

// integrity holds the record in memory. The engine writes it only inside
// Exclusive; it is read without the engine's lock (Restricted, Alert), so
// that the local control API never waits for an update step to learn
// whether it may act.
type integrity struct {
	mu  sync.Mutex
	rec integrityRecord
}

func (in *integrity) get() integrityRecord {
	in.mu.Lock()
	defer in.mu.Unlock()
	r := in.rec
	r.Slots = maps.Clone(r.Slots)
	r.Findings = slices.Clone(r.Findings)
	r.Unqueued = slices.Clone(r.Unqueued)
	return r
}

func (in *integrity) set(r integrityRecord) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rec = r
}

// loadIntegrity reads the record. A record that fails its check is itself
// a finding: the engine starts restricted, with no slot references.
func (e *Engine) loadIntegrity() error {
	rec := integrityRecord{Version: integrityVersion}
	b, err := e.cfg.State.ReadFile(integrityFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("read integrity record: %w", err)
	default:
		if perr := e.parseIntegrity(b, &rec); perr != nil {
			e.cfg.Log.Error("integrity record unusable", "err", perr)
			rec = integrityRecord{Version: integrityVersion}
			f := Finding{Reason: TamperRecord, Detail: perr.Error(), Time: e.cfg.Now().UTC()}
			rec.Findings = []Finding{f}
			rec.Unqueued = []deviceapi.Event{e.tamperEvent(f)}
			// Persisted with its report by the first check (inspect);
			// until then a restart finds the same damage.
			if hook := e.cfg.Integrity.OnAlert; hook != nil {
				hook(f)
			}
		}
	}
	e.integ.set(rec)
	return nil
}

func (e *Engine) parseIntegrity(b []byte, rec *integrityRecord) error {
	if len(b) > MaxStateFile || json.Unmarshal(b, rec) != nil {
		return fmt.Errorf("%s is not a valid record", integrityFile)
	}
	if !hmac.Equal([]byte(rec.MAC), []byte(e.integrityMAC(rec))) {
		return fmt.Errorf("%s fails its integrity check", integrityFile)
	}
	return rec.validate()
}

func (e *Engine) integrityMAC(rec *integrityRecord) string {
	r := *rec
	r.MAC = ""
	body, _ := json.Marshal(r)
	if len(e.cfg.Integrity.Key) == 0 {
		sum := sha256.Sum256(body)
		return hex.EncodeToString(sum[:])
	}
	m := hmac.New(sha256.New, e.cfg.Integrity.Key)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// saveIntegrity writes rec atomically and makes it current.
func (e *Engine) saveIntegrity(rec integrityRecord) error {
	rec.Version = integrityVersion
	rec.MAC = e.integrityMAC(&rec)
	b, err := json.Marshal(rec)
	if err == nil {
		err = e.cfg.State.WriteFile(integrityFile, b)
	}
	if err != nil {
		return fmt.Errorf("write integrity record: %w", err)
	}
	e.integ.set(rec)
	return nil
}

// Restricted reports whether an alert restricts the engine to the update
// server. It does not wait for a running update step.
func (e *Engine) Restricted() bool { return len(e.Alert()) > 0 }

// Alert returns the findings of the current alert, oldest first; none when
// the engine is not restricted. It does not wait for a running update step.
func (e *Engine) Alert() []Finding {
	e.integ.mu.Lock()
	defer e.integ.mu.Unlock()
	return slices.Clone(e.integ.rec.Findings)
}

// raise adds the findings whose reason is not yet part of the alert,
// persists them with their tamper-detected reports, and queues the reports.
// The engine is restricted in memory even if the write fails: failing open
// on a full or broken state partition would defeat the check.
func (e *Engine) raise(found ...Finding) error {
	rec := e.integ.get()
	var fresh []Finding
	for _, f := range found {
		if len(rec.Findings) >= maxFindings || slices.ContainsFunc(rec.Findings, func(g Finding) bool { return g.Reason == f.Reason }) {
			continue
		}
		f.Reason, f.Detail, f.Time = truncate(f.Reason, maxReason), truncate(f.Detail, maxDetail), e.cfg.Now().UTC()
		rec.Findings = append(rec.Findings, f)
		rec.Unqueued = appendBounded(rec.Unqueued, e.tamperEvent(f))
		fresh = append(fresh, f)
	}
	if len(fresh) > 0 {
		e.integ.set(rec)
		for _, f := range fresh {
			e.cfg.Log.Error("unauthorised change detected; restricted to the update server", "reason", f.Reason, "detail", f.Detail)
		}
		if err := e.saveIntegrity(rec); err != nil {
			return err
		}
		if hook := e.cfg.Integrity.OnAlert; hook != nil {
			for _, f := range fresh {
				hook(f)
			}
		}
	}
	return e.settle()
}

func (e *Engine) tamperEvent(f Finding) deviceapi.Event {
	return deviceapi.Event{ID: e.newID() + "-" + string(deviceapi.EventTamper), Type: deviceapi.EventTamper,
		Reason: f.Reason, Detail: f.Detail, Time: e.cfg.Now().UTC()}
}

// appendBounded keeps the newest reports if a device raises and clears
// alerts many times without ever reaching the journal (a state partition
// that refuses writes).
func appendBounded(evs []deviceapi.Event, ev deviceapi.Event) []deviceapi.Event {
	if len(evs) >= maxUnqueued {
		evs = evs[1:]
	}
	return append(evs, ev)
}

// settle moves the record's unqueued reports to the journal's outbox. They
// reach the server with the next check-in.
func (e *Engine) settle() error {
	if !e.queueUnqueued() {
		return nil
	}
	if err := e.save(); err != nil {
		return err
	}
	return e.dropUnqueued()
}

// queueUnqueued puts the record's reports into the outbox in memory, to be
// persisted by the caller's next journal write; it reports whether there
// were any.
func (e *Engine) queueUnqueued() bool {
	rec := e.integ.get()
	for _, ev := range rec.Unqueued {
		e.queueEvent(ev)
	}
	return len(rec.Unqueued) > 0
}

// dropUnqueued forgets reports that a journal write has persisted.
func (e *Engine) dropUnqueued() error {
	rec := e.integ.get()
	if len(rec.Unqueued) == 0 {
		return nil
	}
	rec.Unqueued = nil
	return e.saveIntegrity(rec)
}

// recordCommit notes the image an A/B update committed to its slot, the
// reference of the slot check, and ends an alert: a committed update
// re-established a known-good image. It is written before the journal
// records the commit, so a power cut between the two repeats both; a
// record behind the journal would make the new slot look tampered with.
// In-place payloads (archives, update modules) do not replace the system
// image and change nothing here.
func (e *Engine) recordCommit(tx *Transaction) error {
	if tx.Slot == "" {
		return nil
	}
	rec := e.integ.get()
	img := slotImage(tx)
	if rec.Slots[tx.Slot] == img && rec.Committed == tx.Slot && len(rec.Findings) == 0 {
		return nil
	}
	if rec.Slots == nil {
		rec.Slots = map[string]SlotImage{}
	}
	rec.Slots[tx.Slot], rec.Committed = img, tx.Slot
	if len(rec.Findings) > 0 {
		e.cfg.Log.Warn("alert cleared: a verified update was committed", "target", tx.Target.Name, "findings", reasons(rec.Findings))
		rec.Findings = nil
		rec.Unqueued = appendBounded(rec.Unqueued, deviceapi.Event{ID: tx.ID + "-" + string(deviceapi.EventAlertCleared),
			Type: deviceapi.EventAlertCleared, Target: truncate(tx.Target.Name, maxTargetName), Reason: ClearedByUpdate,
			Detail: "a verified update re-established a known-good image", Time: e.cfg.Now().UTC()})
	}
	return e.saveIntegrity(rec)
}

// slotImage is what tx leaves in its slot, as its installer's read-back
// checks it.
func slotImage(tx *Transaction) SlotImage {
	d := tx.Target.Plain()
	if tx.Written != nil && tx.Written.SHA256 != "" {
		d = *tx.Written
	}
	return SlotImage{Component: tx.Target.Custom.Component, Target: tx.Target.Name, Length: d.Length, SHA256: d.SHA256}
}

func reasons(fs []Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Reason
	}
	return out
}

// ClearAlert ends the restriction after an administrator examined the
// device; detail says who cleared it and why, and goes to the server with
// the alert-cleared report. A cause that persists is detected again: the
// boot-integrity hook, the counter and the trusted metadata at the next
// check-in, the slot at the next slot check. It returns ErrNoAlert when
// the engine is not restricted.
func (e *Engine) ClearAlert(ctx context.Context, detail string) error {
	return e.Exclusive(ctx, func() error {
		rec := e.integ.get()
		if len(rec.Findings) == 0 {
			return ErrNoAlert
		}
		e.cfg.Log.Warn("alert cleared by an administrator", "findings", reasons(rec.Findings), "detail", detail)
		rec.Findings = nil
		rec.Unqueued = appendBounded(rec.Unqueued, deviceapi.Event{ID: e.newID() + "-" + string(deviceapi.EventAlertCleared),
			Type: deviceapi.EventAlertCleared, Reason: ClearedByAdministrator, Detail: truncate(detail, maxDetail), Time: e.cfg.Now().UTC()})
		if err := e.saveIntegrity(rec); err != nil {
			return err
		}
		return e.settle()
	})
}

// reportAlertAgain queues the current alert's reports once more, after a
// factory reset emptied the outbox: the alert outlives the reset (the
// software it is about stays), and the server must hear of it under the
// new identity too.
func (e *Engine) reportAlertAgain() error {
	rec := e.integ.get()
	if len(rec.Findings) == 0 {
		return nil
	}
	for _, f := range rec.Findings {
		ev := e.tamperEvent(f)
		ev.Time = f.Time
		rec.Unqueued = appendBounded(rec.Unqueued, ev)
	}
	if err := e.saveIntegrity(rec); err != nil {
		return err
	}
	return e.settle()
}
