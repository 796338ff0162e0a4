package koshin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"
)

// Audit results.
const (
	AuditOK     = "ok"     // the action was carried out
	AuditDenied = "denied" // refused: authentication or authorisation
	AuditFailed = "failed" // attempted and failed
)

// Limits of audit fields.
const (
	maxAuditPrincipalLen = MaxShortLen
	maxAuditActionLen    = 64
	maxAuditTargetLen    = MaxNameLen
	MaxAuditDetailLen    = 4 * MaxTextLen
)

// AuditEntry records one state-changing request (CCDS STS14, SSS04): who
// (Principal, e.g. "operator:alice", "token:12", "device:<id>", "system"),
// did what (Action, e.g. "rollout.halt") to what (Target), with what
// result. Entries are append-only and hash-chained: each carries the hash
// of its predecessor, so editing, deleting or reordering any entry breaks
// every later hash. Publishing the head (VerifyAudit) elsewhere also makes
// truncation detectable.
type AuditEntry struct {
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Principal string    `json:"principal"`
	Action    string    `json:"action"`
	Target    string    `json:"target,omitempty"`
	Result    string    `json:"result"`
	Detail    string    `json:"detail,omitempty"`
	PrevHash  []byte    `json:"prev_hash"`
	Hash      []byte    `json:"hash"`
}

// Validate checks the caller-supplied fields.
func (e *AuditEntry) Validate() error {
	if e.Principal == "" || len(e.Principal) > maxAuditPrincipalLen {
		return Errorf(EINVALID, "Audit principal must be 1-%d bytes.", maxAuditPrincipalLen)
	}
	if err := ValidateID("Audit action", e.Action); err != nil || len(e.Action) > maxAuditActionLen {
		return Errorf(EINVALID, "Audit action must be an identifier of at most %d bytes.", maxAuditActionLen)
	}
	if e.Result != AuditOK && e.Result != AuditDenied && e.Result != AuditFailed {
		return Errorf(EINVALID, "Audit result must be ok, denied or failed.")
	}
	if err := validateText("Audit target", e.Target, maxAuditTargetLen); err != nil {
		return err
	}
	return validateText("Audit detail", e.Detail, MaxAuditDetailLen)
}

// Seal places e after prev (nil for the first entry) at time now: it sets
// Seq, Time (truncated to microseconds, the precision every store keeps),
// PrevHash and Hash.
func (e *AuditEntry) Seal(prev *AuditEntry, now time.Time) {
	e.Seq, e.PrevHash = 1, make([]byte, sha256.Size)
	if prev != nil {
		e.Seq, e.PrevHash = prev.Seq+1, bytes.Clone(prev.Hash)
	}
	e.Time = now.UTC().Truncate(time.Microsecond)
	e.Hash = e.ComputeHash()
}

// ComputeHash is SHA-256 over the entry's fields and PrevHash, each length-
// prefixed so that no two different entries encode alike.
func (e *AuditEntry) ComputeHash() []byte {
	h := sha256.New()
	put := func(b []byte) {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
		h.Write(b)
	}
	put(binary.BigEndian.AppendUint64(nil, uint64(e.Seq)))
	put(binary.BigEndian.AppendUint64(nil, uint64(e.Time.UnixMicro())))
	for _, s := range []string{e.Principal, e.Action, e.Target, e.Result, e.Detail} {
		put([]byte(s))
	}
	put(e.PrevHash)
	return h.Sum(nil)
}

// AuditChainError says where and why the audit chain does not verify.
type AuditChainError struct {
	Seq    int64
	Reason string
}

func (e *AuditChainError) Error() string {
	return fmt.Sprintf("audit entry %d: %s", e.Seq, e.Reason)
}

// VerifyChain checks entries that follow prev (nil: the chain's start):
// consecutive sequence numbers, each PrevHash equal to its predecessor's
// Hash, and each Hash recomputed. The error is an ECONFLICT *Error wrapping
// an *AuditChainError.
func VerifyChain(prev *AuditEntry, entries []*AuditEntry) error {
	for _, e := range entries {
		wantSeq, wantPrev := int64(1), make([]byte, sha256.Size)
		if prev != nil {
			wantSeq, wantPrev = prev.Seq+1, prev.Hash
		}
		var reason string
		switch {
		case e.Seq != wantSeq:
			reason = fmt.Sprintf("sequence gap (expected %d)", wantSeq)
		case !bytes.Equal(e.PrevHash, wantPrev):
			reason = "does not link to its predecessor"
		case !bytes.Equal(e.Hash, e.ComputeHash()):
			reason = "content does not match its hash"
		}
		if reason != "" {
			ce := &AuditChainError{Seq: e.Seq, Reason: reason}
			return &Error{Code: ECONFLICT, Message: "Audit log does not verify: " + ce.Error() + ".", Err: ce}
		}
		prev = e
	}
	return nil
}

// AuditHead is the last entry's position and hash; record it outside the
// server to detect truncation of the log later.
type AuditHead struct {
	Seq  int64  `json:"seq"`
	Hash []byte `json:"hash"`
}

// AuditFilter lists audit entries by sequence.
type AuditFilter struct {
	Principal string    `json:"principal,omitempty"`
	Action    string    `json:"action,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	Page      SeqPage   `json:"page"`
}

// Validate checks the filter.
func (f *AuditFilter) Validate() error {
	if err := validateText("Principal", f.Principal, maxAuditPrincipalLen); err != nil {
		return err
	}
	if err := validateText("Action", f.Action, maxAuditActionLen); err != nil {
		return err
	}
	return f.Page.Validate()
}

// AuditStore keeps the append-only audit log.
type AuditStore interface {
	// AppendAudit seals e after the current last entry at the store's
	// clock and stores it, atomically with respect to other appends.
	// Returns EINVALID.
	AppendAudit(ctx context.Context, e *AuditEntry) error

	// FindAuditEntries lists entries matching f.
	FindAuditEntries(ctx context.Context, f AuditFilter) ([]*AuditEntry, error)

	// VerifyAudit walks the whole chain and returns its head. Returns an
	// ECONFLICT error wrapping *AuditChainError at the first bad entry.
	VerifyAudit(ctx context.Context) (AuditHead, error)
}

// AuditWriteTimeout bounds the append of an audit entry for a change that
// already happened. The append no longer follows the request's
// cancellation (a client hanging up must not drop the record), and it may
// wait long: under overload the store's single writer can be many seconds
// behind, and an entry given up on is a change without its record. The
// request holds its admission slot meanwhile, so a slow store turns into
// 503 + Retry-After for new requests rather than lost entries.
const AuditWriteTimeout = time.Minute
