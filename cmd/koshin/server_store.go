package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/httpapi"
	"github.com/koshin-ota/koshin/pki"
	"github.com/koshin-ota/koshin/postgres"
	"github.com/koshin-ota/koshin/s3"
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

// Blob backends (BlobConf.Backend).
const (
	blobFile = "file"
	blobS3   = "s3"
)

// BlobConf says where the published image repository (metadata and
// payloads) is read from: "file", the directory image.dir (the default), or
// "s3", a bucket that `koshin repo publish-s3` fills and that every replica
// reads (docs/s3.md). The S3 credentials come from KOSHIN_S3_ACCESS_KEY,
// KOSHIN_S3_SECRET_KEY and KOSHIN_S3_SESSION_TOKEN, never from the file.
type BlobConf struct {
	Backend string `koanf:"backend"`
	S3      S3Conf `koanf:"s3"`
}

// S3Conf maps onto s3.Config.
type S3Conf struct {
	Endpoint  string `koanf:"endpoint"`
	Region    string `koanf:"region"`
	Bucket    string `koanf:"bucket"`
	Prefix    string `koanf:"prefix"`
	PathStyle bool   `koanf:"path_style"`
	AllowHTTP bool   `koanf:"allow_http"`
	// Downloads is "redirect" (default: devices download payloads from a
	// presigned URL, or CDNBaseURL, valid for PresignTTL) or "stream" (the
	// server streams payloads from the bucket, for devices that cannot
	// reach the bucket).
	Downloads  string        `koanf:"downloads"`
	PresignTTL time.Duration `koanf:"presign_ttl"`
	CDNBaseURL string        `koanf:"cdn_base_url"`

	AccessKey, SecretKey, SessionToken string `koanf:"-"`
}

// Download modes (S3Conf.Downloads).
const (
	downloadsRedirect = "redirect"
	downloadsStream   = "stream"
)

// credentialsFrom takes the S3 credentials from the environment.
func (c *S3Conf) credentialsFrom(environ []string) {
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case envS3AccessKey:
			c.AccessKey = v
		case envS3SecretKey:
			c.SecretKey = v
		case envS3SessionToken:
			c.SessionToken = v
		}
	}
}

// checkBlob checks the blob backend selection.
func (c *ServerConfig) checkBlob() error {
	b := &c.Blob
	if b.Backend == "" {
		b.Backend = blobFile
	}
	switch b.Backend {
	case blobFile:
		return nil
	case blobS3:
	default:
		return fmt.Errorf("config: blob.backend %q: want file or s3", b.Backend)
	}
	if c.Image.Dir != "" {
		return errors.New("config: image.dir is for blob.backend file; with s3 the repository is in the bucket")
	}
	if b.S3.Downloads == "" {
		b.S3.Downloads = downloadsRedirect
	}
	if b.S3.Downloads != downloadsRedirect && b.S3.Downloads != downloadsStream {
		return fmt.Errorf("config: blob.s3.downloads %q: want redirect or stream", b.S3.Downloads)
	}
	if b.S3.PresignTTL == 0 {
		b.S3.PresignTTL = httpapi.DefaultPresignTTL
	}
	if b.S3.PresignTTL < time.Second || b.S3.PresignTTL > s3.MaxPresignTTL {
		return fmt.Errorf("config: blob.s3.presign_ttl must be between 1s and %v", s3.MaxPresignTTL)
	}
	return nil
}

func (c *S3Conf) config() s3.Config {
	return s3.Config{Endpoint: c.Endpoint, AllowHTTP: c.AllowHTTP, Region: c.Region, Bucket: c.Bucket, Prefix: c.Prefix,
		AccessKey: c.AccessKey, SecretKey: c.SecretKey, SessionToken: c.SessionToken, PathStyle: c.PathStyle,
		CDNBaseURL: c.CDNBaseURL}
}

// openImageRepo returns the image repository the server serves and
// imports from: the directory image.dir, or the S3 bucket. nil means none
// is configured (no releases can be imported). An S3 bucket is checked
// once: refused credentials or a missing bucket stop the start, an
// unreachable one is logged and served around (devices retry downloads).
func openImageRepo(ctx context.Context, c *ServerConfig, log *slog.Logger) (*httpapi.ImageRepo, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if c.Blob.Backend != blobS3 {
		if c.Image.Dir == "" {
			return nil, nil
		}
		return &httpapi.ImageRepo{Dir: c.Image.Dir}, nil
	}
	st, err := s3.Open(c.Blob.S3.config())
	if err != nil {
		return nil, fmt.Errorf("config: blob.s3: %w (credentials: %s, %s)", err, envS3AccessKey, envS3SecretKey)
	}
	if err := st.Check(ctx); koshin.ErrorCode(err) == koshin.EUNAVAILABLE {
		log.Error("object storage unreachable at start; serving without it until it answers", "bucket", st.Bucket(), "err", err)
	} else if err != nil {
		return nil, fmt.Errorf("object storage: %w", err)
	}
	img := &httpapi.ImageRepo{Blobs: st}
	if c.Blob.S3.Downloads == downloadsRedirect {
		img.Presign, img.PresignTTL = st, c.Blob.S3.PresignTTL
	}
	return img, nil
}
