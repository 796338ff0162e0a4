package postgres

import (
	"context"
	"database/sql"
	"errors"

	"github.com/koshin-ota/koshin"
)

const auditColumns = `seq, logged_at, principal, action, target, result, detail, prev_hash, hash`

func scanAudit(s scanner) (*koshin.AuditEntry, error) {
	var e koshin.AuditEntry
	var at sql.NullInt64
	if err := s.Scan(&e.Seq, &at, &e.Principal, &e.Action, &e.Target, &e.Result, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
		return nil, err
	}
	e.Time = timeOf(at)
	return &e, nil
}

// AppendAudit implements koshin.AuditStore. Appends from every replica
// queue on one transaction-scoped advisory lock; the statement that reads
// the head runs after the lock is granted, so at READ COMMITTED it sees the
// previous holder's committed entry, and the chain stays linear. seq is
// the primary key besides, so even a writer that bypassed the lock could
// not claim a taken place in the chain.
func (db *DB) AppendAudit(ctx context.Context, e *koshin.AuditEntry) error {
	if err := e.Validate(); err != nil {
		return err
	}
	return db.update(ctx, func(tx *sql.Tx) error {
		if err := xactLock(ctx, tx, xactAuditChain); err != nil {
			return err
		}
		prev, err := scanAudit(tx.QueryRowContext(ctx, `SELECT `+auditColumns+` FROM audit_log ORDER BY seq DESC LIMIT 1`))
		if errors.Is(err, sql.ErrNoRows) {
			prev = nil
		} else if err != nil {
			return err
		}
		e.Seal(prev, db.now())
		_, err = tx.ExecContext(ctx, `INSERT INTO audit_log (`+auditColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			e.Seq, e.Time.UnixMicro(), e.Principal, e.Action, e.Target, e.Result, e.Detail, e.PrevHash, e.Hash)
		return err
	})
}

// FindAuditEntries implements koshin.AuditStore.
func (db *DB) FindAuditEntries(ctx context.Context, f koshin.AuditFilter) ([]*koshin.AuditEntry, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	limit, _ := koshin.Limit(f.Page.Limit)
	var q query
	if f.Principal != "" {
		q.where("principal = " + q.arg(f.Principal))
	}
	if f.Action != "" {
		q.where("action = " + q.arg(f.Action))
	}
	if !f.Since.IsZero() {
		q.where("logged_at >= " + q.arg(f.Since.UnixMicro()))
	}
	order := q.seqPage("seq", f.Page.Cursor, f.Page.Desc, limit)
	rows, err := db.db.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_log`+q.clause()+order, q.args...)
	if err != nil {
		return nil, mapError(err)
	}
	return collect(rows, scanAudit)
}

// VerifyAudit implements koshin.AuditStore, a page at a time so memory
// stays flat however long the log is.
func (db *DB) VerifyAudit(ctx context.Context) (koshin.AuditHead, error) {
	var prev *koshin.AuditEntry
	for {
		var cursor int64
		if prev != nil {
			cursor = prev.Seq
		}
		page, err := db.FindAuditEntries(ctx, koshin.AuditFilter{Page: koshin.SeqPage{Cursor: cursor, Limit: koshin.MaxLimit}})
		if err != nil {
			return koshin.AuditHead{}, err
		}
		if len(page) == 0 {
			break
		}
		if err := koshin.VerifyChain(prev, page); err != nil {
			return koshin.AuditHead{}, err
		}
		prev = page[len(page)-1]
	}
	if prev == nil {
		return koshin.AuditHead{}, nil
	}
	return koshin.AuditHead{Seq: prev.Seq, Hash: prev.Hash}, nil
}
