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
