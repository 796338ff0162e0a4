package main

import (
	"log/slog"
	"strings"
	"testing"
)

// TestStoreConfig: the store is chosen by configuration, a DSN comes from
// the environment, and credentials in the configuration file are refused.
func TestStoreConfig(t *testing.T) {
	p := writeConfig(t, "data_dir: /srv/koshin\nstore: postgres\npostgres:\n  max_conns: 8\n")
	env := []string{"KOSHIN_POSTGRES__DSN=postgres://koshin:pw@db.example/koshin?sslmode=verify-full"}
	cfg, err := loadServerConfig(p, func() []string { return env })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.resolve(); err != nil {
		t.Fatal(err)
	}
	if cfg.Store != storePostgres || cfg.Postgres.MaxConns != 8 || !strings.Contains(cfg.Postgres.DSN, "db.example") {
		t.Fatalf("config: %+v", cfg)
	}

	def, err := loadServerConfig("", func() []string { return nil })
	if err != nil || def.resolve() != nil || def.Store != storeSQLite {
		t.Fatalf("default store %q, %v", def.Store, err)
	}

	t.Setenv("PGPASSWORD", "from-env")
	for name, yaml := range map[string]string{
		"password in file DSN":     "store: postgres\npostgres:\n  dsn: postgres://koshin:secret@db/koshin\n",
		"password keyword in file": "store: postgres\npostgres:\n  dsn: host=db user=koshin password=secret\n",
		"unknown postgres key":     "postgres:\n  host: db\n",
	} {
		if _, err := loadServerConfig(writeConfig(t, yaml), func() []string { return nil }); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Without a password the DSN may sit in the file (PGPASSWORD or a
	// passfile supplies it).
	if _, err := loadServerConfig(writeConfig(t, "store: postgres\npostgres:\n  dsn: postgres://koshin@db/koshin\n"), func() []string { return nil }); err != nil {
		t.Fatalf("DSN without password: %v", err)
	}

	for name, env := range map[string][]string{
		"postgres without DSN": {"KOSHIN_STORE=postgres"},
		"DSN with sqlite":      {"KOSHIN_POSTGRES__DSN=postgres://db/koshin"},
		"unknown store":        {"KOSHIN_STORE=mysql"},
		"bad DSN":              {"KOSHIN_STORE=postgres", "KOSHIN_POSTGRES__DSN=postgres://[::1/x"},
		"zero replicas":        {"KOSHIN_LIMITS__REPLICAS=-1"},
	} {
		cfg, err := loadServerConfig("", func() []string { return env })
		if err == nil {
			err = cfg.resolve()
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestReplicaLimits: with limits.replicas N each replica enforces 1/N of
// each rate; bursts and in-flight caps stay per replica.
func TestReplicaLimits(t *testing.T) {
	cfg := defaultServerConfig()
	cfg.DataDir = "/srv/koshin"
	cfg.Limits.Replicas = 4
	if err := cfg.resolve(); err != nil {
		t.Fatal(err)
	}
	def := defaultServerConfig()
	one, four := def.apiConfig(), cfg.apiConfig()
	if four.DeviceRate != one.DeviceRate/4 || four.AddrRate != one.AddrRate/4 || four.LoginRate != one.LoginRate/4 ||
		four.EnrollRate != one.EnrollRate/4 {
		t.Fatalf("rates not split: %+v", four)
	}
	if four.DeviceBurst != one.DeviceBurst || four.AddrBurst != one.AddrBurst || four.MaxInFlight != one.MaxInFlight ||
		four.MaxDownloads != one.MaxDownloads {
		t.Fatalf("bursts or caps changed: %+v", four)
	}
}

// TestBlobConfig: the S3 backend takes its credentials from the
// environment only, and conflicting or unknown settings are refused.
func TestBlobConfig(t *testing.T) {
	p := writeConfig(t, `data_dir: /srv/koshin
blob:
  backend: s3
  s3:
    endpoint: https://s3.example.com
    region: eu-central-1
    bucket: acme-updates
    prefix: image/
    presign_ttl: 5m
`)
	env := []string{"KOSHIN_S3_ACCESS_KEY=AK", "KOSHIN_S3_SECRET_KEY=SK"}
	cfg, err := loadServerConfig(p, func() []string { return env })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.resolve(); err != nil {
		t.Fatal(err)
	}
	s := cfg.Blob.S3
	if cfg.Blob.Backend != blobS3 || s.Bucket != "acme-updates" || s.AccessKey != "AK" || s.SecretKey != "SK" ||
		s.Downloads != downloadsRedirect || s.PresignTTL.Minutes() != 5 {
		t.Fatalf("blob config: %+v", cfg.Blob)
	}
	noCreds := cfg
	noCreds.Blob.S3.AccessKey, noCreds.Blob.S3.SecretKey = "", ""
	if _, err := openImageRepo(t.Context(), &noCreds, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), envS3SecretKey) {
		t.Fatalf("S3 without credentials: %v", err)
	}
	def := defaultServerConfig()
	def.DataDir = "/srv/koshin"
	if err := def.resolve(); err != nil || def.Blob.Backend != blobFile {
		t.Fatalf("default backend %q, %v", def.Blob.Backend, err)
	}

	for name, yaml := range map[string]string{
		"secret in file":  "blob:\n  s3:\n    secret_key: x\n",
		"unknown backend": "blob:\n  backend: ftp\n",
		"dir with s3":     "image:\n  dir: /srv/pub\nblob:\n  backend: s3\n",
		"bad downloads":   "blob:\n  backend: s3\n  s3:\n    downloads: proxy\n",
		"long presign":    "blob:\n  backend: s3\n  s3:\n    presign_ttl: 720h\n",
	} {
		cfg, err := loadServerConfig(writeConfig(t, "data_dir: /x\n"+yaml), func() []string { return nil })
		if err == nil {
			err = cfg.resolve()
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
