package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// copyOrder lists every table of the store in an order that satisfies the
// foreign keys (each table after the ones it references). A table the
// source has that is not listed stops the copy, so a schema change cannot
// silently leave data behind.
var copyOrder = []string{
	"devices", "device_tags", "device_reports", "preauthorizations", "enrollment_tokens",
	"releases", "release_hardware", "rollouts", "assignments", "rollout_members", "events",
	"operators", "api_tokens", "audit_log", "settings",
}

// tableCopy is one copied table: its rows and checksum, equal on both
// sides.
type tableCopy struct {
	name string
	rows int64
	sum  string
}

// column is a target column; its PostgreSQL type decides how values from
// SQLite are converted and how both sides are normalised for checksums.
type column struct {
	name, typ string // typ: information_schema data_type
}

// copyStore copies every table from the SQLite file at path to the empty
// PostgreSQL database dsn in one transaction and verifies counts and
// checksums before committing. Both have the same schema version.
func copyStore(ctx context.Context, path, dsn string) ([]tableCopy, error) {
	src, err := openSourceSnapshot(ctx, path)
	if err != nil {
		return nil, err
	}
	defer src.Rollback()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect target: %w", err)
	}
	defer conn.Close(context.Background())
	if err := sameSchema(ctx, src, conn); err != nil {
		return nil, err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	if err := checkEmpty(ctx, tx); err != nil {
		return nil, err
	}
	var out []tableCopy
	for _, table := range copyOrder {
		tc, err := copyTable(ctx, src, tx, table)
		if err != nil {
			return nil, fmt.Errorf("copy %s: %w", table, err)
		}
		out = append(out, tc)
	}
	if err := resetSequences(ctx, tx); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return out, nil
}

// openSourceSnapshot opens the SQLite file read-only and starts the
// transaction every read happens in, so the copy is one consistent
// snapshot even if something writes meanwhile (WAL readers see the state
// at their first read).
func openSourceSnapshot(ctx context.Context, path string) (*sql.Tx, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "query_only(1)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open source: %w", err)
	}
	db.SetMaxOpenConns(1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open source: %w", err)
	}
	var tables []string
	rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table'
		AND name NOT LIKE 'sqlite_%' AND name <> 'goose_db_version' ORDER BY name`)
	if err == nil {
		for rows.Next() {
			var n string
			if err = rows.Scan(&n); err != nil {
				break
			}
			tables = append(tables, n)
		}
		rows.Close()
	}
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		tx.Rollback()
		db.Close()
		return nil, fmt.Errorf("list source tables: %w", err)
	}
	for _, t := range tables {
		if !slices.Contains(copyOrder, t) {
			tx.Rollback()
			db.Close()
			return nil, fmt.Errorf("source table %s is unknown to this version of migrate-store; nothing copied", t)
		}
	}
	return tx, nil
}

// sameSchema compares the schema versions goose recorded on both sides.
func sameSchema(ctx context.Context, src *sql.Tx, dst *pgx.Conn) error {
	var a, b int64
	if err := src.QueryRowContext(ctx, `SELECT MAX(version_id) FROM goose_db_version`).Scan(&a); err != nil {
		return fmt.Errorf("source schema version: %w", err)
	}
	if err := dst.QueryRow(ctx, `SELECT MAX(version_id) FROM goose_db_version`).Scan(&b); err != nil {
		return fmt.Errorf("target schema version: %w", err)
	}
	if a != b {
		return fmt.Errorf("schema versions differ: source %d, target %d", a, b)
	}
	return nil
}

// checkEmpty refuses a target that holds any row: migrate-store never
// merges.
func checkEmpty(ctx context.Context, tx pgx.Tx) error {
	var full []string
	for _, t := range copyOrder {
		var any bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+pgx.Identifier{t}.Sanitize()+`)`).Scan(&any); err != nil {
			return fmt.Errorf("target table %s: %w", t, err)
		}
		if any {
			full = append(full, t)
		}
	}
	if len(full) > 0 {
		return fmt.Errorf("the target database is not empty (%s); migrate-store copies only into an empty one", strings.Join(full, ", "))
	}
	return nil
}

// targetColumns lists a target table's columns in their order.
func targetColumns(ctx context.Context, tx pgx.Tx, table string) ([]column, error) {
	rows, err := tx.Query(ctx, `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, table)
	if err != nil {
		return nil, err
	}
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var c column
		err := r.Scan(&c.name, &c.typ)
		return c, err
	})
	if err == nil && len(cols) == 0 {
		err = fmt.Errorf("no table %s in the target", table)
	}
	return cols, err
}

// copyTable streams one table with COPY, then reads both sides back and
// compares row counts and checksums.
func copyTable(ctx context.Context, src *sql.Tx, tx pgx.Tx, table string) (tableCopy, error) {
	cols, err := targetColumns(ctx, tx, table)
	if err != nil {
		return tableCopy{}, err
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	sel := `SELECT ` + strings.Join(quoteAll(names), ", ") + ` FROM ` + pgx.Identifier{table}.Sanitize()
	rows, err := src.QueryContext(ctx, sel)
	if err != nil {
		return tableCopy{}, fmt.Errorf("read source: %w", err)
	}
	srcSum := newChecksum()
	n, err := tx.CopyFrom(ctx, pgx.Identifier{table}, names, &sourceRows{rows: rows, cols: cols, sum: srcSum})
	rows.Close()
	if err != nil {
		return tableCopy{}, err
	}
	dstSum, err := targetChecksum(ctx, tx, sel, cols)
	if err != nil {
		return tableCopy{}, err
	}
	if srcSum.rows != n || dstSum.rows != n || srcSum.hex() != dstSum.hex() {
		return tableCopy{}, fmt.Errorf("verification failed: source %d rows (%s), copied %d, target %d rows (%s)",
			srcSum.rows, srcSum.hex(), n, dstSum.rows, dstSum.hex())
	}
	return tableCopy{name: table, rows: n, sum: srcSum.hex()}, nil
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = pgx.Identifier{n}.Sanitize()
	}
	return out
}

// sourceRows feeds COPY from the SQLite rows, converting each value to the
// target column's type and adding the row to the source checksum.
type sourceRows struct {
	rows *sql.Rows
	cols []column
	sum  *checksum
	vals []any
	err  error
}

func (s *sourceRows) Next() bool {
	if !s.rows.Next() {
		return false
	}
	raw := make([]any, len(s.cols))
	ptrs := make([]any, len(raw))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	if s.err = s.rows.Scan(ptrs...); s.err != nil {
		return false
	}
	s.vals = make([]any, len(raw))
	for i, c := range s.cols {
		if s.vals[i], s.err = toTarget(raw[i], c); s.err != nil {
			return false
		}
	}
	s.sum.add(s.cols, s.vals)
	return true
}

func (s *sourceRows) Values() ([]any, error) { return s.vals, nil }

func (s *sourceRows) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.rows.Err()
}

// toTarget converts a SQLite value for a PostgreSQL column: 0/1 integers
// to booleans, and text and blobs to the column's kind.
func toTarget(v any, c column) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch c.typ {
	case "boolean":
		i, ok := v.(int64)
		if !ok || (i != 0 && i != 1) {
			return nil, fmt.Errorf("column %s: %v (%T) is not a 0/1 boolean", c.name, v, v)
		}
		return i == 1, nil
	case "bigint", "integer", "smallint":
		i, ok := v.(int64)
		if !ok {
			return nil, fmt.Errorf("column %s: %v (%T) is not an integer", c.name, v, v)
		}
		return i, nil
	case "text":
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		}
	case "bytea":
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string:
			return []byte(x), nil
		}
	default:
		return nil, fmt.Errorf("column %s has type %s, which migrate-store does not know", c.name, c.typ)
	}
	return nil, fmt.Errorf("column %s: %T cannot become %s", c.name, v, c.typ)
}

// targetChecksum reads the copied table back inside the copying
// transaction.
func targetChecksum(ctx context.Context, tx pgx.Tx, sel string, cols []column) (*checksum, error) {
	rows, err := tx.Query(ctx, sel)
	if err != nil {
		return nil, fmt.Errorf("read back: %w", err)
	}
	defer rows.Close()
	sum := newChecksum()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		for i, v := range vals {
			if x, ok := v.(int32); ok {
				vals[i] = int64(x)
			} else if x, ok := v.(int16); ok {
				vals[i] = int64(x)
			}
		}
		sum.add(cols, vals)
	}
	return sum, rows.Err()
}

// checksum is an order-independent digest of a table: the sum modulo
// 2^256 of the SHA-256 of each row's canonical encoding. Row order differs
// between the databases (and need not be defined), the set of rows must
// not.
type checksum struct {
	rows int64
	acc  *big.Int
}

var mod256 = new(big.Int).Lsh(big.NewInt(1), 256)

func newChecksum() *checksum { return &checksum{acc: new(big.Int)} }

// add encodes each value with its column name and a type tag, lengths
// before variable parts, so that no two different rows encode alike.
func (c *checksum) add(cols []column, vals []any) {
	h := sha256.New()
	var n [8]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	for i, col := range cols {
		put([]byte(col.name))
		switch v := vals[i].(type) {
		case nil:
			h.Write([]byte{0})
		case bool:
			h.Write([]byte{1})
			if v {
				h.Write([]byte{1})
			} else {
				h.Write([]byte{0})
			}
		case int64:
			h.Write([]byte{2})
			binary.BigEndian.PutUint64(n[:], uint64(v))
			h.Write(n[:])
		case string:
			h.Write([]byte{3})
			put([]byte(v))
		case []byte:
			h.Write([]byte{4})
			put(v)
		default:
			h.Write([]byte{5})
			put(fmt.Appendf(nil, "%T:%v", v, v))
		}
	}
	c.acc.Add(c.acc, new(big.Int).SetBytes(h.Sum(nil)))
	c.acc.Mod(c.acc, mod256)
	c.rows++
}

func (c *checksum) hex() string {
	b := make([]byte, 32)
	return hex.EncodeToString(c.acc.FillBytes(b))
}

// resetSequences moves every serial column's sequence past the copied
// rows, so the next insert on any replica gets a fresh number.
func resetSequences(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT table_name, column_name, pg_get_serial_sequence(quote_ident(table_name), column_name)
		FROM information_schema.columns WHERE table_schema = current_schema()
		AND pg_get_serial_sequence(quote_ident(table_name), column_name) IS NOT NULL`)
	if err != nil {
		return fmt.Errorf("find sequences: %w", err)
	}
	type seq struct{ table, col, name string }
	seqs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (seq, error) {
		var s seq
		err := r.Scan(&s.table, &s.col, &s.name)
		return s, err
	})
	if err != nil {
		return fmt.Errorf("find sequences: %w", err)
	}
	for _, s := range seqs {
		if s.table == "goose_db_version" {
			continue
		}
		// setval(seq, max, true): the next value is max+1; an empty table
		// leaves the sequence at its start.
		q := `SELECT setval($1, m) FROM (SELECT MAX(` + pgx.Identifier{s.col}.Sanitize() + `) AS m FROM ` +
			pgx.Identifier{s.table}.Sanitize() + `) x WHERE m IS NOT NULL`
		if _, err := tx.Exec(ctx, q, s.name); err != nil {
			return fmt.Errorf("sequence of %s.%s: %w", s.table, s.col, err)
		}
	}
	return nil
}
