package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/koshin-ota/koshin/trust"
)

// benchServers starts the servers of a `koshin bench checkin` run: one on
// SQLite, or --replicas on a throw-away PostgreSQL database, set up the
// way docs/scale-out.md describes (`server init` once, the key directory
// copied to every replica).
func (m *Main) benchServers(ctx context.Context, f benchFlags) ([]*ServerMain, func(), error) {
	switch f.store {
	case storeSQLite, "":
		if f.replicas != 1 {
			return nil, nil, usagef("--replicas needs --store postgres: a SQLite store serves one server")
		}
		s, cleanup, err := m.benchServer(ctx, f)
		if err != nil {
			return nil, nil, err
		}
		return []*ServerMain{s}, cleanup, nil
	case storePostgres:
	default:
		return nil, nil, usagef("--store must be sqlite or postgres")
	}
	if f.replicas < 1 || f.replicas > 16 {
		return nil, nil, usagef("--replicas must be 1-16")
	}
	base := m.Getenv(envPostgresDSN)
	if base == "" {
		return nil, nil, usagef("--store postgres needs %s: a PostgreSQL server on which the benchmark may create a database", envPostgresDSN)
	}
	var srvs []*ServerMain
	var cleanups []func()
	cleanup := func() {
		for _, s := range srvs {
			s.Close()
		}
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	err := m.benchReplicas(ctx, f, base, &srvs, &cleanups)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return srvs, cleanup, nil
}

func (m *Main) benchReplicas(ctx context.Context, f benchFlags, base string, srvs *[]*ServerMain, cleanups *[]func()) error {
	dsn, drop, err := benchDatabase(ctx, base)
	if err != nil {
		return err
	}
	*cleanups = append(*cleanups, drop)
	dir := f.dataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "koshin-bench-*")
		if err != nil {
			return err
		}
		*cleanups = append(*cleanups, func() { os.RemoveAll(tmp) })
		dir = tmp
	}
	pass := []byte(hex.EncodeToString(randomKey(16)))
	bm := *m
	bm.Stdout = io.Discard
	bm.Passphrase = func(string) ([]byte, error) { return bytes.Clone(pass), nil }
	for i := range f.replicas {
		cfg := benchConfig(filepath.Join(dir, fmt.Sprintf("replica-%d", i)), f)
		cfg.Store, cfg.Postgres.DSN = storePostgres, dsn
		if i == 0 {
			if err := bm.initServer(ctx, cfg, trust.ChannelRelease, ""); err != nil {
				return err
			}
		} else {
			for _, sub := range []string{pkiDir, "director"} {
				if err := copyDir(filepath.Join(dir, "replica-0", sub), filepath.Join(cfg.DataDir, sub)); err != nil {
					return err
				}
			}
		}
		s := &ServerMain{Config: cfg, Now: m.Now, Passphrase: bm.Passphrase, Log: slog.New(slog.DiscardHandler)}
		if err := s.Run(ctx); err != nil {
			return err
		}
		*srvs = append(*srvs, s)
	}
	return nil
}

// benchDatabase creates a database for one run on the server that base
// names, and returns its DSN and a function that drops it.
func benchDatabase(ctx context.Context, base string) (string, func(), error) {
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", envPostgresDSN, err)
	}
	name := fmt.Sprintf("koshin_bench_%s_%s", time.Now().UTC().Format("20060102t150405"), hex.EncodeToString(randomKey(3)))
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create benchmark database: %w", err)
	}
	drop := func() {
		admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		admin.Close()
	}
	if u, err := url.Parse(base); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		return u.String(), drop, nil
	}
	return strings.TrimSpace(base) + " dbname=" + name, drop, nil
}

// copyDir copies the regular files under src to dst, keeping their modes:
// how a replica gets the installation's key directory.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm())
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
}

// pgCPUMeter measures the CPU time of the PostgreSQL backends serving the
// benchmark's database, when PostgreSQL runs on this host (it reads
// /proc/PID/stat of the backends pg_stat_activity lists): a check-in's
// cost on PostgreSQL includes the database's work, which the process's own
// CPU time does not show.
type pgCPUMeter struct {
	db    *sql.DB
	start map[int]time.Duration
}

// newPGCPUMeter returns nil when the servers do not use PostgreSQL.
func newPGCPUMeter(srvs []*ServerMain) *pgCPUMeter {
	if len(srvs) == 0 || srvs[0].Config.Store != storePostgres {
		return nil
	}
	db, err := sql.Open("pgx", srvs[0].Config.Postgres.DSN)
	if err != nil {
		return nil
	}
	db.SetMaxOpenConns(1)
	return &pgCPUMeter{db: db}
}

func (p *pgCPUMeter) sample(ctx context.Context) (map[int]time.Duration, bool) {
	rows, err := p.db.QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		return nil, false
	}
	defer rows.Close()
	out := map[int]time.Duration{}
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) != nil {
			return nil, false
		}
		if cpu, ok := procCPU(pid); ok {
			out[pid] = cpu
		}
	}
	return out, rows.Err() == nil && len(out) > 0
}

// Start records the backends' CPU time so far.
func (p *pgCPUMeter) Start(ctx context.Context) {
	if p != nil {
		p.start, _ = p.sample(ctx)
	}
}

// Stop returns the backends' CPU time since Start (backends that started
// meanwhile count from zero) and closes the meter; ok is false when it
// cannot be measured (PostgreSQL on another host).
func (p *pgCPUMeter) Stop(ctx context.Context) (time.Duration, bool) {
	if p == nil {
		return 0, false
	}
	defer p.db.Close()
	end, ok := p.sample(ctx)
	if !ok || p.start == nil {
		return 0, false
	}
	var d time.Duration
	for pid, cpu := range end {
		d += cpu - p.start[pid]
	}
	return d, true
}

// procCPU reads a process's user and system time from /proc/PID/stat
// (fields 14 and 15, in clock ticks of 1/100 s on Linux).
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3
	if len(f) < 13 {
		return 0, false
	}
	var ut, st int64
	if _, err := fmt.Sscan(f[11], &ut); err != nil {
		return 0, false
	}
	if _, err := fmt.Sscan(f[12], &st); err != nil {
		return 0, false
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, true
}
