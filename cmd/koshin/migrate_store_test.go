package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/postgres"
	"github.com/koshin-ota/koshin/sqlite"
	"github.com/koshin-ota/koshin/storetest"
)

// TestMigrateStore moves a populated SQLite database (filled through the
// real store by storetest.Populate, so that every table has rows) to an
// empty PostgreSQL database with `koshin migrate-store`, then compares
// every table row by row, read independently from both databases, checks
// that the PostgreSQL store reads the same installation and carries on
// (sequences continue, the audit chain extends), and that a second run is
// refused because the target is no longer empty.
func TestMigrateStore(t *testing.T) {
	dsn := testPostgres(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "koshin.db")
	clock := storetest.NewClock(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	src := sqlite.NewDB(path)
	src.Now = clock.Now
	mustDo(t, src.Open(ctx))
	storetest.Populate(t, src, clock)
	mustDo(t, src.Close())

	var out bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
	if err := m.migrateStore(ctx, "sqlite:"+path, "postgres:"+dsn); err != nil {
		t.Fatalf("migrate-store: %v\n%s", err, out.String())
	}
	t.Logf("migrate-store:\n%s", out.String())

	lite, err := sql.Open("sqlite", "file:"+path+"?_pragma=query_only(1)")
	mustDo(t, err)
	defer lite.Close()
	pg, err := sql.Open("pgx", dsn)
	mustDo(t, err)
	defer pg.Close()
	for _, table := range copyOrder {
		a, b := tableRows(t, lite, table), tableRows(t, pg, table)
		if len(a) == 0 {
			t.Errorf("%s: the populated source has no rows; the test would prove nothing", table)
		}
		if diff := cmp.Diff(a, b); diff != "" {
			t.Errorf("%s differs (-sqlite +postgres):\n%s", table, diff)
		}
		if !strings.Contains(out.String(), table+" ") {
			t.Errorf("the report does not list %s", table)
		}
	}
	compareStores(t, path, dsn, clock)

	out.Reset()
	err = m.migrateStore(ctx, "sqlite:"+path, "postgres:"+dsn)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("second migration into a full database: %v", err)
	}
	for _, bad := range [][2]string{{"sqlite", "postgres:" + dsn}, {"postgres:" + dsn, "postgres:" + dsn},
		{"sqlite:" + path, "postgres"}, {"sqlite:" + path, "sqlite:" + path}} {
		if err := m.migrateStore(ctx, bad[0], bad[1]); err == nil {
			t.Errorf("--from %s --to %s accepted", bad[0], bad[1])
		}
	}
	if err := m.migrateStore(ctx, "sqlite:"+filepath.Join(t.TempDir(), "missing.db"), "postgres:"+dsn); err == nil {
		t.Error("a missing source file was accepted (and would have been created empty)")
	}
}

// tableRows reads a table with plain SQL and renders each row as text in
// column-name order, booleans as 0/1, and sorts the rows: the comparison
// does not depend on migrate-store's own reading or checksums.
func tableRows(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT * FROM ` + table)
	mustDo(t, err)
	defer rows.Close()
	cols, err := rows.Columns()
	mustDo(t, err)
	order := make([]int, len(cols))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(cols[a], cols[b]) })
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		mustDo(t, rows.Scan(ptrs...))
		var b strings.Builder
		for _, i := range order {
			fmt.Fprintf(&b, "%s=%s ", cols[i], render(vals[i]))
		}
		out = append(out, b.String())
	}
	mustDo(t, rows.Err())
	slices.Sort(out)
	return out
}

func render(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case bool:
		if x {
			return "1"
		}
		return "0"
	case []byte:
		return fmt.Sprintf("%x", x)
	case string:
		return fmt.Sprintf("%q", x)
	default:
		return fmt.Sprint(x)
	}
}

// compareStores reads the installation through both stores and checks
// that the PostgreSQL one continues where SQLite stopped.
func compareStores(t *testing.T, path, dsn string, clock *storetest.Clock) {
	ctx := context.Background()
	src := sqlite.NewDB(path)
	src.Now = clock.Now
	mustDo(t, src.Open(ctx))
	defer src.Close()
	dst := postgres.NewDB(dsn)
	dst.Now = clock.Now
	mustDo(t, dst.Open(ctx))
	defer dst.Close()

	for name, read := range map[string]func(koshin.Store) (any, error){
		"devices": func(s koshin.Store) (any, error) {
			return s.FindDevices(ctx, koshin.DeviceFilter{Limit: koshin.MaxLimit})
		},
		"rollouts": func(s koshin.Store) (any, error) {
			return s.FindRollouts(ctx, koshin.RolloutFilter{Page: koshin.SeqPage{Limit: koshin.MaxLimit}})
		},
		"operators": func(s koshin.Store) (any, error) { return s.FindOperators(ctx, koshin.OperatorFilter{}) },
		"audit": func(s koshin.Store) (any, error) {
			return s.FindAuditEntries(ctx, koshin.AuditFilter{Page: koshin.SeqPage{Limit: koshin.MaxLimit}})
		},
		"head": func(s koshin.Store) (any, error) { return s.VerifyAudit(ctx) },
		"events": func(s koshin.Store) (any, error) {
			return s.FindEvents(ctx, koshin.EventFilter{Page: koshin.SeqPage{Limit: koshin.MaxLimit}})
		},
	} {
		a, err := read(src)
		mustDo(t, err)
		b, err := read(dst)
		mustDo(t, err)
		if diff := cmp.Diff(a, b); diff != "" {
			t.Errorf("%s read through the stores differ (-sqlite +postgres):\n%s", name, diff)
		}
	}

	// Sequences continue past the copied rows; the chain extends.
	r := storetest.NewRollout("pop-2.img", koshin.Phase{Percent: 100})
	mustDo(t, dst.CreateRollout(ctx, r))
	rs, err := src.FindRollouts(ctx, koshin.RolloutFilter{Page: koshin.SeqPage{Limit: koshin.MaxLimit}})
	mustDo(t, err)
	if r.ID <= rs[len(rs)-1].ID {
		t.Errorf("new rollout got ID %d, not after the copied ones (last %d)", r.ID, rs[len(rs)-1].ID)
	}
	mustDo(t, dst.AppendAudit(ctx, &koshin.AuditEntry{Principal: "cli:test", Action: "check", Result: koshin.AuditOK}))
	if _, err := dst.VerifyAudit(ctx); err != nil {
		t.Errorf("audit chain after an append on the target: %v", err)
	}
}

// TestChecksum: the table checksum ignores row order and notices any
// change of a value, its type or its column.
func TestChecksum(t *testing.T) {
	cols := []column{{"id", "bigint"}, {"name", "text"}, {"key", "bytea"}, {"active", "boolean"}}
	rows := [][]any{{int64(1), "a", []byte{1}, true}, {int64(2), "b", nil, false}, {int64(3), "", []byte{}, nil}}
	sum := func(rows ...[]any) string {
		c := newChecksum()
		for _, r := range rows {
			c.add(cols, r)
		}
		return c.hex()
	}
	base := sum(rows...)
	if sum(rows[2], rows[0], rows[1]) != base {
		t.Fatal("checksum depends on row order")
	}
	for name, changed := range map[string][]any{
		"value":        {int64(1), "A", []byte{1}, true},
		"text as blob": {int64(1), []byte("a"), []byte{1}, true},
		"null":         {int64(1), "a", nil, true},
		"empty blob":   {int64(1), "a", []byte{}, true},
		"bool":         {int64(1), "a", []byte{1}, false},
	} {
		if sum(changed, rows[1], rows[2]) == base {
			t.Errorf("a changed %s leaves the checksum alone", name)
		}
	}
	if sum(rows[0], rows[1]) == base || sum(rows[0], rows[0], rows[1], rows[2]) == base {
		t.Error("a missing or duplicated row leaves the checksum alone")
	}
}

// TestToTarget: SQLite values become the PostgreSQL column's type, and
// anything that does not fit is refused rather than guessed.
func TestToTarget(t *testing.T) {
	for _, tt := range []struct {
		v    any
		typ  string
		want any
		ok   bool
	}{
		{int64(1), "boolean", true, true}, {int64(0), "boolean", false, true}, {int64(2), "boolean", nil, false},
		{int64(7), "integer", int64(7), true}, {"7", "bigint", nil, false},
		{[]byte("x"), "text", "x", true}, {"x", "bytea", []byte("x"), true}, {nil, "bytea", nil, true},
		{int64(1), "jsonb", nil, false},
	} {
		got, err := toTarget(tt.v, column{"c", tt.typ})
		if (err == nil) != tt.ok || !cmp.Equal(got, tt.want) {
			t.Errorf("toTarget(%v, %s) = %v, %v", tt.v, tt.typ, got, err)
		}
	}
}
