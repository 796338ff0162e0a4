package postgres

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// migrationRule is one mechanical check of migrations/README.md.
type migrationRule struct {
	name string
	// bad finds a violation in a migration's SQL (comments removed).
	bad func(sql string) bool
	why string
}

var (
	reCreateIndex      = regexp.MustCompile(`(?i)\bCREATE\s+(UNIQUE\s+)?INDEX\s+(CONCURRENTLY\s+)?(IF\s+NOT\s+EXISTS\s+)?\w+\s+ON\s+(ONLY\s+)?(\w+)`)
	reCreateTable      = regexp.MustCompile(`(?i)\bCREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)`)
	reConcurrently     = regexp.MustCompile(`(?i)\b(CREATE|DROP)\s+(UNIQUE\s+)?INDEX\s+CONCURRENTLY\b`)
	reCreateConcurrent = regexp.MustCompile(`(?i)\bCREATE\s+(UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)`)
	reAlterType        = regexp.MustCompile(`(?i)\bALTER\s+COLUMN\s+\w+\s+(SET\s+DATA\s+)?TYPE\b`)
	reVolatileDefault  = regexp.MustCompile(`(?i)\bADD\s+(COLUMN\s+)?[^;]*\bDEFAULT\s+[^;,]*\(`)
	reRewrite          = regexp.MustCompile(`(?i)\b(VACUUM\s+FULL|CLUSTER|SET\s+TABLESPACE)\b|\bREINDEX\s+(TABLE|INDEX|SCHEMA|DATABASE)\s+(\w+)`)
	reAddConstraint    = regexp.MustCompile(`(?i)\bADD\s+(CONSTRAINT\s+\w+\s+)?(CHECK|FOREIGN\s+KEY)\b[^;]*`)
	reNotValid         = regexp.MustCompile(`(?i)\bNOT\s+VALID\b`)
	reSetNotNull       = regexp.MustCompile(`(?i)\bSET\s+NOT\s+NULL\b`)
	reContract         = regexp.MustCompile(`(?i)\b(DROP\s+(COLUMN|TABLE|CONSTRAINT)|RENAME\s+(COLUMN\s+|CONSTRAINT\s+)?\w*\s*TO)\b`)
	reDropIndex        = regexp.MustCompile(`(?i)\bDROP\s+INDEX\s+(CONCURRENTLY\s+)?(IF\s+EXISTS\s+)?(\w+)`)
	reLockTable        = regexp.MustCompile(`(?i)\bLOCK\s+(TABLE\s+)?\w+\s+IN\b`)
	reNoTransaction    = regexp.MustCompile(`(?m)^--\s*\+goose\s+NO\s+TRANSACTION\s*$`)
	reAllow            = regexp.MustCompile(`(?m)^--\s*koshin:allow\s+([\w-]+)`)
	reComment          = regexp.MustCompile(`--[^\n]*`)
)

var migrationRules = []migrationRule{
	{"index-concurrently", func(sql string) bool {
		created := map[string]bool{}
		for _, m := range reCreateTable.FindAllStringSubmatch(sql, -1) {
			created[strings.ToLower(m[2])] = true
		}
		for _, m := range reCreateIndex.FindAllStringSubmatch(sql, -1) {
			if m[2] == "" && !created[strings.ToLower(m[5])] {
				return true
			}
		}
		return false
	}, "CREATE INDEX on an existing table must be CONCURRENTLY"},
	{"rewrite", func(sql string) bool {
		if reAlterType.MatchString(sql) || reVolatileDefault.MatchString(sql) {
			return true
		}
		for _, m := range reRewrite.FindAllStringSubmatch(sql, -1) {
			if m[1] != "" || !strings.EqualFold(m[3], "CONCURRENTLY") {
				return true
			}
		}
		return false
	}, "the statement rewrites the table under an ACCESS EXCLUSIVE lock"},
	{"not-valid", func(sql string) bool {
		for _, m := range reAddConstraint.FindAllString(sql, -1) {
			if !reNotValid.MatchString(m) {
				return true
			}
		}
		return false
	}, "add CHECK and FOREIGN KEY constraints NOT VALID, validate in a later migration"},
	{"set-not-null", reSetNotNull.MatchString, "SET NOT NULL scans the table under an ACCESS EXCLUSIVE lock"},
	{"contract", func(sql string) bool {
		if reContract.MatchString(sql) {
			return true
		}
		// Dropping an index is a contract step too (it may be what enforces
		// a rule), except for clearing a half-built index this migration
		// rebuilds concurrently.
		rebuilt := map[string]bool{}
		for _, m := range reCreateConcurrent.FindAllStringSubmatch(sql, -1) {
			rebuilt[strings.ToLower(m[3])] = true
		}
		for _, m := range reDropIndex.FindAllStringSubmatch(sql, -1) {
			if !rebuilt[strings.ToLower(m[3])] {
				return true
			}
		}
		return false
	}, "dropping or renaming breaks the previous server version still running, or lifts a rule before its replacement holds"},
	{"lock-table", reLockTable.MatchString, "explicit table locks block traffic"},
}

// lintMigration returns the rule violations of one migration file.
func lintMigration(text string) []string {
	allowed := map[string]bool{}
	for _, m := range reAllow.FindAllStringSubmatch(text, -1) {
		allowed[m[1]] = true
	}
	up := text
	if i := strings.Index(up, "-- +goose Down"); i >= 0 {
		up = up[:i] // Down migrations undo a release; they are run by hand
	}
	sql := reComment.ReplaceAllString(up, "")
	var out []string
	for _, r := range migrationRules {
		if !allowed[r.name] && r.bad(sql) {
			out = append(out, r.name+": "+r.why)
		}
	}
	if reConcurrently.MatchString(sql) && !reNoTransaction.MatchString(text) {
		out = append(out, "no-transaction: CONCURRENTLY cannot run inside a transaction; mark the file -- +goose NO TRANSACTION")
	}
	for _, m := range reCreateConcurrent.FindAllStringSubmatch(sql, -1) {
		drop := regexp.MustCompile(`(?i)\bDROP\s+INDEX\s+CONCURRENTLY\s+IF\s+EXISTS\s+` + regexp.QuoteMeta(m[3]) + `\b`)
		if !drop.MatchString(sql) {
			out = append(out, "retry-clean: drop a half-built "+m[3]+" (DROP INDEX CONCURRENTLY IF EXISTS) before creating it")
		}
	}
	return out
}

// TestMigrationRules holds every migration after the initial schema to the
// rules in migrations/README.md, and keeps the PostgreSQL and SQLite
// migration versions in step.
func TestMigrationRules(t *testing.T) {
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no migrations: %v", err)
	}
	slices.Sort(files)
	for _, f := range files[1:] {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range lintMigration(string(b)) {
			t.Errorf("%s: %s", f, v)
		}
	}
	versions := func(dir string) []string {
		fs, err := filepath.Glob(filepath.Join(dir, "*.sql"))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range fs {
			v, _, _ := strings.Cut(filepath.Base(f), "_")
			out = append(out, v)
		}
		slices.Sort(out)
		return out
	}
	if pg, lite := versions("migrations"), versions("../sqlite/migrations"); !slices.Equal(pg, lite) {
		t.Errorf("migration versions differ: postgres %v, sqlite %v; every schema change lands in both", pg, lite)
	}
}

// TestLintMigration: the linter catches each kind of long lock and passes
// the safe forms.
func TestLintMigration(t *testing.T) {
	tests := []struct {
		name, sql string
		want      []string // rule names, in order
	}{
		{"plain index", "-- +goose Up\nCREATE INDEX events_type ON events (type);", []string{"index-concurrently"}},
		{"unique index", "CREATE UNIQUE INDEX x ON devices (serial);", []string{"index-concurrently"}},
		{"index on new table", "CREATE TABLE notes (id BIGINT);\nCREATE INDEX notes_id ON notes (id);", nil},
		{"concurrent index", "-- +goose NO TRANSACTION\n-- +goose Up\nDROP INDEX CONCURRENTLY IF EXISTS events_type;\n" +
			"CREATE INDEX CONCURRENTLY events_type ON events (type);\n-- +goose Down\nDROP INDEX CONCURRENTLY IF EXISTS events_type;", nil},
		{"concurrent in transaction", "DROP INDEX CONCURRENTLY IF EXISTS x;\nCREATE INDEX CONCURRENTLY x ON events (type);", []string{"no-transaction"}},
		{"concurrent without drop", "-- +goose NO TRANSACTION\nCREATE INDEX CONCURRENTLY x ON events (type);", []string{"retry-clean"}},
		{"type change", "ALTER TABLE devices ALTER COLUMN poll_interval TYPE INTEGER;", []string{"rewrite"}},
		{"volatile default", "ALTER TABLE devices ADD COLUMN seen BIGINT DEFAULT extract(epoch from now());", []string{"rewrite"}},
		{"constant default", "ALTER TABLE devices ADD COLUMN note TEXT NOT NULL DEFAULT '';", nil},
		{"vacuum full", "VACUUM FULL events;", []string{"rewrite"}},
		{"reindex", "REINDEX TABLE events;", []string{"rewrite"}},
		{"reindex concurrently", "REINDEX TABLE CONCURRENTLY events;", nil},
		{"validated check", "ALTER TABLE devices ADD CONSTRAINT c CHECK (poll_interval >= 0);", []string{"not-valid"}},
		{"foreign key", "ALTER TABLE events ADD FOREIGN KEY (assignment_id) REFERENCES assignments (id);", []string{"not-valid"}},
		{"not valid", "ALTER TABLE devices ADD CONSTRAINT c CHECK (poll_interval >= 0) NOT VALID;", nil},
		{"validate", "ALTER TABLE devices VALIDATE CONSTRAINT c;", nil},
		{"set not null", "ALTER TABLE devices ALTER COLUMN note SET NOT NULL;", []string{"set-not-null"}},
		{"allowed", "-- koshin:allow set-not-null (CHECK c validated in 00007)\nALTER TABLE devices ALTER COLUMN note SET NOT NULL;", nil},
		{"drop column", "ALTER TABLE devices DROP COLUMN note;", []string{"contract"}},
		{"drop constraint", "ALTER TABLE events DROP CONSTRAINT events_device_id_event_id_key;", []string{"contract"}},
		{"drop unique index", "-- +goose NO TRANSACTION\nDROP INDEX CONCURRENTLY IF EXISTS devices_active_serial;", []string{"contract"}},
		{"swap unique index", "-- +goose NO TRANSACTION\nDROP INDEX CONCURRENTLY IF EXISTS devices_active_serial2;\n" +
			"CREATE UNIQUE INDEX CONCURRENTLY devices_active_serial2 ON devices (serial, hardware_id) WHERE status = 'active';", nil},
		{"rename", "ALTER TABLE devices RENAME COLUMN note TO notes;", []string{"contract"}},
		{"lock", "LOCK TABLE devices IN ACCESS EXCLUSIVE MODE;", []string{"lock-table"}},
		{"comment only", "-- CREATE INDEX x ON events (type); LOCK TABLE devices IN SHARE MODE", nil},
		{"down is exempt", "-- +goose Up\nSELECT 1;\n-- +goose Down\nALTER TABLE devices DROP COLUMN note;", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, v := range lintMigration(tt.sql) {
			name, _, _ := strings.Cut(v, ":")
			got = append(got, name)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: violations %v, want %v", tt.name, got, tt.want)
		}
	}
}
