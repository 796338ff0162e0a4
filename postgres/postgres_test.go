package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx" for the raw connections

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/postgres"
	"github.com/koshin-ota/koshin/storetest"
)

// The tests need a PostgreSQL server: KOSHIN_TEST_PG holds a DSN whose
// user may create and drop databases (.ci/start-postgres.sh starts a
// throw-away one). Each run migrates one template database with a random
// name; each test gets its own database cloned from it, dropped when the
// test ends, and the template is dropped when the run ends.
var (
	serverDSN    string // KOSHIN_TEST_PG
	templateName string // this run's migrated template database
)

const skipMessage = "KOSHIN_TEST_PG is not set: set it to the DSN of a PostgreSQL server whose user can create databases " +
	`(eval "$(.ci/start-postgres.sh)" starts a throw-away one) to run the PostgreSQL store tests`

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	serverDSN = os.Getenv("KOSHIN_TEST_PG")
	if serverDSN == "" {
		return m.Run() // every test that needs the server skips
	}
	sweepStaleDatabases()
	name, err := createTemplate()
	if err != nil {
		fmt.Fprintf(os.Stderr, "postgres tests: prepare template database: %v\n", err)
		return 1
	}
	templateName = name
	code := m.Run()
	if err := dropDatabase(name); err != nil {
		fmt.Fprintf(os.Stderr, "postgres tests: drop template database %s: %v\n", name, err)
	}
	return code
}

// createTemplate creates a database and migrates it by opening a store.
func createTemplate() (string, error) {
	name := randomName("koshin_tmpl_")
	if err := adminExec(`CREATE DATABASE ` + name); err != nil {
		return "", err
	}
	db := postgres.NewDB(dsnFor(name))
	if err := db.Open(context.Background()); err != nil {
		dropDatabase(name)
		return "", err
	}
	return name, db.Close()
}

// randomName is prefix, the UTC time and random hex: unique, and old
// enough to sweep when a crashed run left it behind.
func randomName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + time.Now().UTC().Format("20060102150405") + "_" + hex.EncodeToString(b)
}

var staleName = regexp.MustCompile(`^koshin_(tmpl|test)_(\d{14})_[0-9a-f]+$`)

// sweepStaleDatabases drops databases that earlier runs created more than
// a day ago and never dropped (a run that panics skips its cleanups).
// Younger ones may belong to a run in progress on a shared server.
func sweepStaleDatabases() {
	db, err := sql.Open("pgx", serverDSN)
	if err != nil {
		return
	}
	defer db.Close()
	rows, err := db.Query(`SELECT datname FROM pg_database WHERE datname LIKE 'koshin\_%'`)
	if err != nil {
		return
	}
	var stale []string
	for rows.Next() {
		var name string
		if rows.Scan(&name) != nil {
			continue
		}
		m := staleName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		if t, err := time.Parse("20060102150405", m[2]); err == nil && time.Since(t) > 24*time.Hour {
			stale = append(stale, name)
		}
	}
	rows.Close()
	for _, name := range stale {
		dropDatabase(name)
	}
}

// dsnFor is the server DSN with its database replaced by name.
func dsnFor(name string) string {
	u, err := url.Parse(serverDSN)
	if err != nil || u.Scheme == "" {
		return serverDSN + " dbname=" + name // keyword/value form: the last keyword wins
	}
	u.Path = "/" + name
	return u.String()
}

func adminExec(stmt string, args ...any) error {
	db, err := sql.Open("pgx", serverDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec(stmt, args...)
	return err
}

func dropDatabase(name string) error {
	return adminExec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
}

// needPG skips tb unless a server is configured.
func needPG(tb testing.TB) {
	tb.Helper()
	if serverDSN == "" {
		tb.Skip(skipMessage)
	}
}

// createDB creates a database for tb (a copy of the migrated template, or
// empty if template is "") and returns its DSN.
func createDB(tb testing.TB, template string) string {
	tb.Helper()
	needPG(tb)
	name := randomName("koshin_test_")
	stmt := `CREATE DATABASE ` + name
	if template != "" {
		stmt += ` TEMPLATE ` + template
	}
	if err := adminExec(stmt); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := dropDatabase(name); err != nil {
			tb.Errorf("drop %s: %v", name, err)
		}
	})
	return dsnFor(name)
}

// MustOpen opens a store on a fresh, migrated database.
func MustOpen(tb testing.TB, now func() time.Time) *postgres.DB {
	tb.Helper()
	return openDSN(tb, createDB(tb, templateName), now)
}

// openDSN opens a store (a "replica" with its own pool) on dsn.
func openDSN(tb testing.TB, dsn string, now func() time.Time, configure ...func(*postgres.DB)) *postgres.DB {
	tb.Helper()
	db := postgres.NewDB(dsn)
	db.Now = now
	for _, c := range configure {
		c(db)
	}
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

// rawDB connects to the store's database without the store, as an
// administrator or an attacker with database credentials would.
func rawDB(tb testing.TB, dsn string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	needPG(t)
	storetest.Run(t, storetest.Backend{
		Open: func(t *testing.T, now func() time.Time) koshin.Store { return MustOpen(t, now) },
		OpenPeer: func(t *testing.T, s koshin.Store, now func() time.Time) koshin.Store {
			return openDSN(t, s.(*postgres.DB).DSN, now)
		},
		TamperAudit: func(t *testing.T, s koshin.Store, seq int64, detail string) {
			db := rawDB(t, s.(*postgres.DB).DSN)
			if _, err := db.Exec(`ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only`); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`UPDATE audit_log SET detail = $1 WHERE seq = $2`, detail, seq); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// TestHistoryIsAppendOnly: the database itself refuses to rewrite, delete
// or truncate the audit log, events and device reports, whoever asks, and
// the store reports the refusal as EFORBIDDEN.
func TestHistoryIsAppendOnly(t *testing.T) {
	s := MustOpen(t, time.Now)
	ctx := context.Background()
	d := storetest.NewDevice(t, "SN-1", "board-a")
	must(t, s.CreateDevice(ctx, d))
	_, err := s.RecordDeviceReport(ctx, d.ID, koshin.Inventory{}, time.Now())
	must(t, err)
	_, err = s.RecordEvent(ctx, &koshin.Event{DeviceID: d.ID, EventID: "e1", Type: koshin.EventTamper}, time.Now())
	must(t, err)
	must(t, s.AppendAudit(ctx, &koshin.AuditEntry{Principal: "system", Action: "test", Result: koshin.AuditOK}))
	raw := rawDB(t, s.DSN)
	for _, stmt := range []string{
		`UPDATE audit_log SET detail = 'x'`, `DELETE FROM audit_log`, `TRUNCATE audit_log`,
		`UPDATE events SET detail = 'x'`, `DELETE FROM events`, `TRUNCATE events`,
		`UPDATE device_reports SET inventory = '{}'`, `DELETE FROM device_reports`, `TRUNCATE device_reports`,
	} {
		if _, err := raw.Exec(stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want append-only refusal", stmt, err)
		}
	}
	var n int
	must(t, raw.QueryRow(`SELECT (SELECT COUNT(*) FROM audit_log) + (SELECT COUNT(*) FROM events) + (SELECT COUNT(*) FROM device_reports)`).Scan(&n))
	if n != 3 {
		t.Fatalf("%d history rows left, want 3", n)
	}
}

// TestAssignmentConstraints: the one-active-assignment rule and the
// active/state agreement hold in the schema itself.
func TestAssignmentConstraints(t *testing.T) {
	s := MustOpen(t, time.Now)
	ctx := context.Background()
	d := storetest.NewDevice(t, "SN-1", "board-a")
	must(t, s.CreateDevice(ctx, d))
	must(t, s.CreateRelease(ctx, storetest.NewRelease("a.img", 2, "board-a")))
	r := storetest.NewRollout("a.img", koshin.Phase{Percent: 100})
	must(t, s.CreateRollout(ctx, r))
	raw := rawDB(t, s.DSN)
	insert := `INSERT INTO assignments (rollout_id, device_id, phase, release_name, mode, state, active, created_at, updated_at)
		VALUES ($1, $2, 0, 'a.img', 'automatic', $3, $4, 0, 0)`
	if _, err := raw.Exec(insert, r.ID, d.ID, "pending", true); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		state  string
		active bool
	}{{"downloading", true}, {"pending", false}, {"committed", true}, {"exploded", false}} {
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
	s := MustOpen(t, time.Now)
	ctx := context.Background()
	d := storetest.NewDevice(t, "SN-1", "board-a")
	must(t, s.CreateDevice(ctx, d))
	again := openDSN(t, s.DSN, time.Now)
	if _, err := again.FindDeviceByID(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentMigrate: replicas that start together on an empty
// database migrate it once; none fails.
func TestConcurrentMigrate(t *testing.T) {
	dsn := createDB(t, "")
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			db := postgres.NewDB(dsn)
			err := db.Open(context.Background())
			if err == nil {
				err = db.Close()
			}
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	files, err := fs.Glob(postgres.Migrations(), "*.sql")
	must(t, err)
	var applied, distinct int
	must(t, rawDB(t, dsn).QueryRow(`SELECT COUNT(*), COUNT(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0`).Scan(&applied, &distinct))
	if applied != len(files) || distinct != len(files) {
		t.Fatalf("%d migrations recorded (%d distinct), want each of the %d once", applied, distinct, len(files))
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if err := postgres.NewDB("").Open(ctx); koshin.ErrorCode(err) != koshin.EINVALID {
		t.Fatalf("empty DSN: %v", err)
	}
	err := postgres.NewDB("postgres://koshin:s3cret@[::1/x").Open(ctx)
	if koshin.ErrorCode(err) != koshin.EINVALID || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad DSN: %v", err)
	}
	dead := postgres.NewDB("postgres://koshin@127.0.0.1:1/koshin?sslmode=disable&connect_timeout=2")
	if err := dead.Open(ctx); err == nil {
		t.Fatal("opened a store on a closed port")
	}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("unexpected error: %v", err)
	}
}

func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := koshin.ErrorCode(err); got != code {
		tb.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}

// TestMigrationGivesWay: a migration whose table is busy (here a long
// transaction holds a lock on devices) gives up after MigrationLockTimeout
// instead of waiting, so the queries that arrive meanwhile wait at most
// that long behind it rather than until the long transaction ends. Once
// the table is free, the same migration applies.
func TestMigrationGivesWay(t *testing.T) {
	s := MustOpen(t, time.Now)
	ctx := context.Background()
	must(t, s.CreateDevice(ctx, storetest.NewDevice(t, "SN-1", "board-a")))
	// The real migrations, then one more on the busy table.
	next := fstest.MapFS{"99999_note.sql": {Data: []byte("-- +goose Up\nALTER TABLE devices ADD COLUMN note TEXT;\n")}}
	files, err := fs.Glob(postgres.Migrations(), "*.sql")
	must(t, err)
	for _, f := range files {
		data, err := fs.ReadFile(postgres.Migrations(), f)
		must(t, err)
		next[f] = &fstest.MapFile{Data: data}
	}

	long, err := rawDB(t, s.DSN).BeginTx(ctx, nil)
	must(t, err)
	defer long.Rollback()
	var n int
	must(t, long.QueryRow(`SELECT COUNT(*) FROM devices`).Scan(&n)) // holds ACCESS SHARE until the end

	// Check-ins keep running while the new replica tries to migrate.
	stop := make(chan struct{})
	slowest := make(chan time.Duration, 1)
	go func() {
		var worst time.Duration
		for {
			select {
			case <-stop:
				slowest <- worst
				return
			default:
			}
			start := time.Now()
			if _, err := s.CountDevices(ctx, koshin.DeviceFilter{}); err != nil {
				t.Errorf("CountDevices during migration: %v", err)
			}
			worst = max(worst, time.Since(start))
		}
	}()
	upgraded := postgres.NewDB(s.DSN)
	upgraded.MigrationLockTimeout, upgraded.MaxAttempts = 100*time.Millisecond, 3
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	err = upgraded.OpenWithMigrations(octx, next)
	close(stop)
	if koshin.ErrorCode(err) != koshin.EUNAVAILABLE || time.Since(start) > 5*time.Second {
		t.Fatalf("migration on a busy table: %v after %v; want EUNAVAILABLE within seconds", err, time.Since(start))
	}
	if worst := <-slowest; worst > 2*time.Second {
		t.Fatalf("a check-in waited %v behind the migration", worst)
	}

	must(t, long.Rollback())
	again := postgres.NewDB(s.DSN)
	must(t, again.OpenWithMigrations(ctx, next))
	defer again.Close()
	must(t, rawDB(t, s.DSN).QueryRow(`SELECT COUNT(note) FROM devices`).Scan(&n))
}
