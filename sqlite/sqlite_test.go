package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/sqlite"
	"github.com/koshin-ota/koshin/storetest"
)

// MustOpen opens a store in a fresh file under t's temp dir.
func MustOpen(tb testing.TB, now func() time.Time) *sqlite.DB {
	tb.Helper()
	return mustOpenPath(tb, filepath.Join(tb.TempDir(), "koshin.db"), now)
}

func mustOpenPath(tb testing.TB, path string, now func() time.Time) *sqlite.DB {
	tb.Helper()
	db := sqlite.NewDB(path)
	db.Now = now
	if err := db.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

// rawDB opens the database file without the store, as an attacker or an
// administrator with file access would.
func rawDB(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Backend{
		Open: func(t *testing.T, now func() time.Time) koshin.Store { return MustOpen(t, now) },
		OpenPeer: func(t *testing.T, s koshin.Store, now func() time.Time) koshin.Store {
			return mustOpenPath(t, s.(*sqlite.DB).Path, now)
		},
		TamperAudit: func(t *testing.T, s koshin.Store, seq int64, detail string) {
			db := rawDB(t, s.(*sqlite.DB).Path)
			for _, stmt := range []string{
				`DROP TRIGGER audit_log_append_only_update`,
				fmt.Sprintf(`UPDATE audit_log SET detail = '%s' WHERE seq = %d`, strings.ReplaceAll(detail, "'", "''"), seq),
			} {
				if _, err := db.Exec(stmt); err != nil {
					t.Fatal(err)
				}
			}
		},
	})
}

// TestHistoryIsAppendOnly: the database itself refuses to rewrite the
// audit log, events and device reports, whoever asks.
func TestHistoryIsAppendOnly(t *testing.T) {
	s := MustOpen(t, time.Now)
	ctx := context.Background()
	d := storetest.NewDevice(t, "SN-1", "board-a")
	if err := s.CreateDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordDeviceReport(ctx, d.ID, koshin.Inventory{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordEvent(ctx, &koshin.Event{DeviceID: d.ID, EventID: "e1", Type: koshin.EventTamper}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, &koshin.AuditEntry{Principal: "system", Action: "test", Result: koshin.AuditOK}); err != nil {
		t.Fatal(err)
	}
	raw := rawDB(t, s.Path)
	for _, stmt := range []string{
		`UPDATE audit_log SET detail = 'x'`, `DELETE FROM audit_log`,
		`UPDATE events SET detail = 'x'`, `DELETE FROM events`,
		`UPDATE device_reports SET inventory = '{}'`, `DELETE FROM device_reports`,
	} {
		if _, err := raw.Exec(stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want append-only refusal", stmt, err)
		}
	}
}

// TestAssignmentConstraints: the one-active-assignment rule holds in the
// schema itself, not only in the store's code.
func TestAssignmentConstraints(t *testing.T) {
	s := MustOpen(t, time.Now)
	ctx := context.Background()
	d := storetest.NewDevice(t, "SN-1", "board-a")
	if err := s.CreateDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRelease(ctx, storetest.NewRelease("a.img", 2, "board-a")); err != nil {
		t.Fatal(err)
	}
	r := storetest.NewRollout("a.img", koshin.Phase{Percent: 100})
	if err := s.CreateRollout(ctx, r); err != nil {
		t.Fatal(err)
	}
	raw := rawDB(t, s.Path)
	insert := `INSERT INTO assignments (rollout_id, device_id, phase, release_name, mode, state, active, created_at, updated_at)
		VALUES ($1, $2, 0, 'a.img', 'automatic', $3, $4, 0, 0)`
	if _, err := raw.Exec(insert, r.ID, d.ID, "pending", true); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		state  string
		active bool
	}{{"downloading", true}, {"pending", false}, {"committed", true}} {
		if _, err := raw.Exec(insert, r.ID, d.ID, c.state, c.active); err == nil {
			t.Errorf("second assignment %s active=%v accepted", c.state, c.active)
		}
	}
	if _, err := raw.Exec(insert, r.ID, d.ID, "committed", false); err != nil {
		t.Errorf("finished assignment refused: %v", err)
	}
}

// TestReopen: migrations are idempotent and data survives a restart.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "koshin.db")
	s := sqlite.NewDB(path)
	ctx := context.Background()
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	d := storetest.NewDevice(t, "SN-1", "board-a")
	if err := s.CreateDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again := mustOpenPath(t, path, time.Now)
	if _, err := again.FindDeviceByID(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := rawDB(t, path).QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v", mode, err)
	}
}

func TestOpenErrors(t *testing.T) {
	if err := sqlite.NewDB("").Open(context.Background()); koshin.ErrorCode(err) != koshin.EINVALID {
		t.Fatalf("empty path: %v", err)
	}
	if err := sqlite.NewDB(filepath.Join(t.TempDir(), "missing", "dir", "koshin.db")).Open(context.Background()); err == nil {
		t.Fatal("opened a database in a missing directory")
	}
}

// TestBusyIsUnavailable: when another process holds the write lock past
// the busy timeout, callers get EUNAVAILABLE (retry later, HTTP 503), not
// an internal error.
func TestBusyIsUnavailable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "koshin.db")
	s := sqlite.NewDB(path)
	s.BusyTimeout = 20 * time.Millisecond
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := storetest.NewDevice(t, "SN-1", "board-a")
	if err := s.CreateDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	conn, err := rawDB(t, path).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, `ROLLBACK`)
	if err := s.TouchDevice(ctx, d.ID, time.Now()); koshin.ErrorCode(err) != koshin.EUNAVAILABLE {
		t.Fatalf("TouchDevice under a foreign write lock: %v", err)
	}
}
