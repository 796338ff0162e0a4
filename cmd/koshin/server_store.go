package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/pki"
	"github.com/koshin-ota/koshin/postgres"
	"github.com/koshin-ota/koshin/sqlite"
)

// Store backends (ServerConfig.Store).
const (
	storeSQLite   = "sqlite"
	storePostgres = "postgres"
)

// PostgresConf configures the PostgreSQL store (store: postgres). The DSN
// carries the password if one is needed; give it in the environment
// (KOSHIN_POSTGRES__DSN), or leave it out of the DSN and let PGPASSWORD or a
// passfile supply it. A configuration file holding a DSN with a password is
// refused, so that the file can be shared and kept under version control.
type PostgresConf struct {
	DSN string `koanf:"dsn"`
	// MaxConns bounds this replica's pooled connections (0: the store's
	// default, 20); see docs/scale-out.md for the sum over replicas.
	MaxConns int `koanf:"max_conns"`
}

// checkStore checks the store selection.
func (c *ServerConfig) checkStore() error {
	switch c.Store {
	case storeSQLite:
		if c.Postgres.DSN != "" {
			return errors.New("config: postgres.dsn is set but store is sqlite; set store: postgres")
		}
	case storePostgres:
		if c.Postgres.DSN == "" {
			return errors.New("config: store postgres needs postgres.dsn (KOSHIN_POSTGRES__DSN)")
		}
		if _, err := pgx.ParseConfig(c.Postgres.DSN); err != nil {
			return errors.New("config: postgres.dsn is not a valid PostgreSQL connection string")
		}
		if c.Postgres.MaxConns < 0 || c.Postgres.MaxConns > 1000 {
			return errors.New("config: postgres.max_conns must be between 0 (default) and 1000")
		}
	default:
		return fmt.Errorf("config: store %q: want sqlite or postgres", c.Store)
	}
	return nil
}

// dsnHasPassword reports whether a DSN carries a password itself (not one
// from PGPASSWORD or a passfile).
func dsnHasPassword(dsn string) bool {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return false
	}
	// pgx folds PGPASSWORD into the parsed config; compare against a parse
	// without the DSN's own settings to tell the two apart.
	base, err := pgx.ParseConfig("")
	if err != nil {
		return cfg.Password != ""
	}
	return cfg.Password != "" && cfg.Password != base.Password
}

// openStore opens (and migrates) the configured store. The SQLite store
// lives in the data directory; the PostgreSQL store is shared by every
// replica.
func openStore(ctx context.Context, c *ServerConfig, now func() time.Time, log *slog.Logger) (koshin.Store, error) {
	switch c.Store {
	case storePostgres:
		db := postgres.NewDB(c.Postgres.DSN)
		db.Now, db.Logger = now, log
		if c.Postgres.MaxConns > 0 {
			db.MaxConns = c.Postgres.MaxConns
		}
		if err := db.Open(ctx); err != nil {
			return nil, fmt.Errorf("open postgres store: %w", err)
		}
		return db, nil
	default:
		db := sqlite.NewDB(filepath.Join(c.DataDir, dbFile))
		db.Now = now
		if err := db.Open(ctx); err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
		return db, nil
	}
}

// claimKeys records the fingerprints of the server CA, the device CA and
// the director's first root in the store, or checks them against the ones
// recorded by `koshin server init` or the first replica. Replicas share
// these keys through a copied key directory (docs/scale-out.md); a
// replica that was given another one, or none (and so made its own CAs),
// refuses to start instead of issuing certificates and signing metadata
// that the other replicas' devices reject.
func claimKeys(ctx context.Context, st koshin.SettingStore, a *pki.Authority, directorRoot1 []byte) error {
	sum := sha256.Sum256(directorRoot1)
	claims := [][2]string{
		{koshin.SettingDeviceCA, pki.Fingerprint(a.DeviceCA())},
		{koshin.SettingDirectorRoot, hex.EncodeToString(sum[:])},
	}
	if fp := a.ServerCAFingerprint(); fp != "" {
		claims = append(claims, [2]string{koshin.SettingServerCA, fp})
	}
	for _, c := range claims {
		stored, err := st.ClaimSetting(ctx, c[0], c[1])
		if err != nil {
			return fmt.Errorf("record %s: %w", c[0], err)
		}
		if stored != c[1] {
			return fmt.Errorf("%s is %s here but %s in the database: this server's key directory is not the one "+
				"the installation was initialised with; copy the pki/ and director/ directories from it (docs/scale-out.md)",
				c[0], c[1], stored)
		}
	}
	return nil
}
