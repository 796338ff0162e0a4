package postgres

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Times are stored as microseconds since the epoch: exact to compare,
// portable to PostgreSQL BIGINT, and PostgreSQL's own timestamp precision.
// The zero time is NULL.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// utcMicro is t as a store returns it: UTC, microsecond precision; zero
// stays zero.
func utcMicro(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

// timeOf reads a stored time; NULL is the zero time. Times come back in UTC.
func timeOf(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMicro(n.Int64).UTC()
}

// jsonText encodes v for a JSON text column.
func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode column: %w", err)
	}
	return string(b), nil
}

// fromJSON decodes a JSON text column into v.
func fromJSON(s string, v any) error {
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return fmt.Errorf("decode column: %w", err)
	}
	return nil
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// query accumulates WHERE conditions and their arguments, numbering
// placeholders $1, $2 … as arguments are added so that the text is valid
// for both SQLite and PostgreSQL.
type query struct {
	conds []string
	args  []any
}

// arg adds an argument and returns its placeholder.
func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

// where adds a condition.
func (q *query) where(cond string) { q.conds = append(q.conds, cond) }

// clause renders "WHERE a AND b", or "" without conditions.
func (q *query) clause() string {
	if len(q.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(q.conds, " AND ")
}

// seqPage adds a sequence cursor condition on column and returns the
// ORDER BY and LIMIT text.
func (q *query) seqPage(column string, cursor int64, desc bool, limit int) string {
	dir := "ASC"
	if desc {
		dir = "DESC"
		if cursor > 0 {
			q.where(column + " < " + q.arg(cursor))
		}
	} else if cursor > 0 {
		q.where(column + " > " + q.arg(cursor))
	}
	return " ORDER BY " + column + " " + dir + " LIMIT " + q.arg(limit)
}

// placeholders returns "$i, $i+1, …" for n more arguments.
func (q *query) placeholders(vals ...any) string {
	ph := make([]string, len(vals))
	for i, v := range vals {
		ph[i] = q.arg(v)
	}
	return strings.Join(ph, ", ")
}
