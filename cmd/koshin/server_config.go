package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/httpapi"
	"github.com/koshin-ota/koshin/tlslimit"
)

// ServerConfig is `koshin server`'s configuration: a YAML file, then
// KOSHIN_* environment variables, then command-line flags, each overriding
// the one before (docs/operator-guide.md lists every key). Durations are Go
// duration strings ("90s", "1h"). Unknown keys are errors, so a typo never
// silently keeps a default.
type ServerConfig struct {
	// DataDir holds the database, the PKI and (by default) the director.
	DataDir string `koanf:"data_dir"`
	// Store is the database: "sqlite" (DataDir/koshin.db, one server) or
	// "postgres" (Postgres.DSN, shared by any number of replicas;
	// docs/scale-out.md).
	Store    string       `koanf:"store"`
	Postgres PostgresConf `koanf:"postgres"`
	// DeviceListen is the device API's address (TLS, mutual TLS after
	// enrollment); ManagementListen the management API's (TLS).
	DeviceListen     string `koanf:"device_listen"`
	ManagementListen string `koanf:"management_listen"`
	// Hosts are the names and addresses devices and operators use to reach
	// the server; the generated server certificate covers them.
	Hosts []string     `koanf:"hosts"`
	TLS   TLSConfig    `koanf:"tls"`
	Image ImageConfig  `koanf:"image"`
	Dir   DirectorConf `koanf:"director"`

	// Blob chooses where Image's repository is read from: the directory
	// image.dir or an S3 bucket (server_store.go, docs/s3.md).
	Blob BlobConf `koanf:"blob"`

	// ContentKeysDir holds NAME.key files (64 hex digits) for encrypted
	// releases, as `koshin release add --encrypt` writes them.
	ContentKeysDir string `koanf:"content_keys_dir"`
	// Webhook receives failed installs, rollbacks and halts (CCDS UPD10).
	Webhook WebhookConf `koanf:"webhook"`
	// Compliance names the product profile the web UI's compliance page
	// reports on (`koshin compliance init` writes one).
	Compliance ComplianceConf `koanf:"compliance"`
	// Anomaly tunes telemetry anomaly detection (server_compliance.go).
	Anomaly AnomalyConf `koanf:"anomaly"`

	PollInterval       time.Duration `koanf:"poll_interval"`
	PollJitter         time.Duration `koanf:"poll_jitter"`
	DirectorExpiry     time.Duration `koanf:"director_expiry"`
	DeviceCertValidity time.Duration `koanf:"device_cert_validity"`
	SessionLifetime    time.Duration `koanf:"session_lifetime"`
	EngineInterval     time.Duration `koanf:"engine_interval"`
	Lockout            LockoutConf   `koanf:"lockout"`
	Limits             LimitsConf    `koanf:"limits"`
	LogLevel           string        `koanf:"log_level"`
}

// TLSConfig names an operator-provided server certificate; empty means the
// server's own CA issues one.
type TLSConfig struct {
	CertFile string `koanf:"cert_file"`
	KeyFile  string `koanf:"key_file"`
	CAFile   string `koanf:"ca_file"`
}

// ImageConfig locates the published image repository.
type ImageConfig struct {
	Dir string `koanf:"dir"`
	// TrustedRoot is the image root file the server verifies imports
	// against; empty means DIR/1.root.json (trust on first use).
	TrustedRoot string `koanf:"trusted_root"`
}

// DirectorConf locates the director workspace and its online key.
type DirectorConf struct {
	Dir string `koanf:"dir"`
	// Key is the online targets key ref; its passphrase comes from
	// KOSHIN_PASSPHRASE or the terminal.
	Key string `koanf:"key"`
}

// WebhookConf names the notification receiver; the shared secret is read
// from a file so that it never sits in the configuration itself.
type WebhookConf struct {
	URL        string `koanf:"url"`
	SecretFile string `koanf:"secret_file"`
}

// ComplianceConf locates the product profile and picks the EN 303 645
// numbering (V2.1.1, the default, or V3.1.3).
type ComplianceConf struct {
	Profile string `koanf:"profile"`
	Edition string `koanf:"edition"`
}

// LockoutConf is the login lockout (EN 303 645 5.1-5, CCDS STS13).
type LockoutConf struct {
	FreeAttempts int           `koanf:"free_attempts"`
	BaseDelay    time.Duration `koanf:"base_delay"`
	MaxDelay     time.Duration `koanf:"max_delay"`
}

// LimitsConf is the overload protection (CCDS UPD06).
type LimitsConf struct {
	// Replicas is how many server replicas share the rates below: each
	// replica enforces rate ÷ Replicas (bursts and the in-flight caps stay
	// per replica); docs/scale-out.md explains the split.
	Replicas     int           `koanf:"replicas"`
	MaxInFlight  int           `koanf:"max_in_flight"`
	MaxDownloads int           `koanf:"max_downloads"`
	DeviceRate   float64       `koanf:"device_rate"`
	DeviceBurst  int           `koanf:"device_burst"`
	AddrRate     float64       `koanf:"addr_rate"`
	AddrBurst    int           `koanf:"addr_burst"`
	LoginRate    float64       `koanf:"login_rate"`
	LoginBurst   int           `koanf:"login_burst"`
	EnrollRate   float64       `koanf:"enroll_rate"`
	EnrollBurst  int           `koanf:"enroll_burst"`
	RetryAfter   time.Duration `koanf:"retry_after"`
	// MaxHandshakes, HandshakeQueue, HandshakeTimeout and HandshakeWait
	// admit TLS handshakes on the device listener (tlslimit.Config; per
	// replica): at most MaxHandshakes compute at once (0: 4 × GOMAXPROCS),
	// at most HandshakeQueue connections are accepted and not yet through
	// their handshake, each handshake has HandshakeTimeout from its start,
	// and a connection waits at most HandshakeWait for its start.
	MaxHandshakes    int           `koanf:"max_handshakes"`
	HandshakeQueue   int           `koanf:"handshake_queue"`
	HandshakeTimeout time.Duration `koanf:"handshake_timeout"`
	HandshakeWait    time.Duration `koanf:"handshake_wait"`
}

// defaultServerConfig is what an empty configuration means.
func defaultServerConfig() ServerConfig {
	d := httpapi.DefaultConfig
	l := koshin.DefaultLockoutPolicy
	return ServerConfig{
		DataDir:          "/var/lib/koshin",
		Store:            storeSQLite,
		DeviceListen:     ":8443",
		ManagementListen: "127.0.0.1:8444",
		PollInterval:     d.PollInterval,
		PollJitter:       d.PollJitter,
		DirectorExpiry:   d.DirectorExpiry,
		SessionLifetime:  d.SessionLifetime,
		EngineInterval:   15 * time.Second,
		Lockout:          LockoutConf{FreeAttempts: l.FreeAttempts, BaseDelay: l.BaseDelay, MaxDelay: l.MaxDelay},
		Limits: LimitsConf{Replicas: 1, MaxInFlight: d.MaxInFlight, MaxDownloads: d.MaxDownloads, DeviceRate: d.DeviceRate,
			DeviceBurst: d.DeviceBurst, AddrRate: d.AddrRate, AddrBurst: d.AddrBurst, LoginRate: d.LoginRate,
			LoginBurst: d.LoginBurst, EnrollRate: d.EnrollRate, EnrollBurst: d.EnrollBurst, RetryAfter: d.RetryAfter,
			HandshakeQueue: tlslimit.DefaultQueue, HandshakeTimeout: tlslimit.DefaultTimeout, HandshakeWait: tlslimit.DefaultMaxWait},
		LogLevel: "info",
	}
}

// loadServerConfig layers the defaults, the file (if path is set) and the
// environment (KOSHIN_DATA_DIR, KOSHIN_LIMITS__DEVICE_RATE: "__" separates
// levels). Flags are applied by the caller.
func loadServerConfig(path string, environ func() []string) (ServerConfig, error) {
	k := koanf.New(".")
	def := defaultServerConfig()
	if path != "" {
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return def, fmt.Errorf("config %s: %w", path, err)
		}
		if err := checkFileSecrets(k); err != nil {
			return def, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := k.Load(env.Provider(".", env.Opt{Prefix: "KOSHIN_", TransformFunc: envKey, EnvironFunc: environ}), nil); err != nil {
		return def, fmt.Errorf("config from environment: %w", err)
	}
	cfg := def
	dc := &mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(), mapstructure.StringToSliceHookFunc(",")),
		WeaklyTypedInput: true,
		ErrorUnused:      true,
	}
	if err := k.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{DecoderConfig: dc}); err != nil {
		return def, fmt.Errorf("config: %w", err)
	}
	cfg.Blob.S3.credentialsFrom(environ())
	return cfg, nil
}

// configKeys are the environment-settable keys; other KOSHIN_ variables
// (KOSHIN_PASSPHRASE, KOSHIN_TOKEN, ...) belong to other commands.
var configKeys = map[string]bool{}

func init() {
	for _, key := range strings.Fields(`data_dir store postgres.dsn postgres.max_conns limits.replicas
		blob.backend blob.s3.endpoint blob.s3.region blob.s3.bucket blob.s3.prefix blob.s3.path_style blob.s3.allow_http
		blob.s3.downloads blob.s3.presign_ttl blob.s3.cdn_base_url device_listen management_listen hosts
		tls.cert_file tls.key_file tls.ca_file image.dir image.trusted_root director.dir director.key
		content_keys_dir webhook.url webhook.secret_file compliance.profile compliance.edition poll_interval poll_jitter director_expiry device_cert_validity session_lifetime
		engine_interval lockout.free_attempts lockout.base_delay lockout.max_delay limits.max_in_flight
		limits.max_downloads limits.device_rate limits.device_burst limits.addr_rate limits.addr_burst
		limits.login_rate limits.login_burst limits.enroll_rate limits.enroll_burst limits.retry_after
		limits.max_handshakes limits.handshake_queue limits.handshake_timeout limits.handshake_wait log_level`) {
		configKeys[key] = true
	}
}

func envKey(k, v string) (string, any) {
	key := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, "KOSHIN_"), "__", "."))
	if !configKeys[key] {
		return "", nil
	}
	return key, v
}

// resolve fills paths derived from the data directory and checks the
// result.
func (c *ServerConfig) resolve() error {
	if c.DataDir == "" {
		return errors.New("config: data_dir is required")
	}
	if c.Dir.Dir == "" {
		c.Dir.Dir = filepath.Join(c.DataDir, "director")
	}
	if c.Dir.Key == "" {
		c.Dir.Key = filepath.Join(c.Dir.Dir, "targets.key")
	}
	if c.EngineInterval < time.Second {
		return errors.New("config: engine_interval must be at least 1s")
	}
	if c.Store == "" {
		c.Store = storeSQLite
	}
	if c.Limits.Replicas == 0 {
		c.Limits.Replicas = 1
	}
	if err := c.checkStore(); err != nil {
		return err
	}
	if err := c.checkBlob(); err != nil {
		return err
	}
	if c.Limits.Replicas < 1 || c.Limits.Replicas > 1000 {
		return errors.New("config: limits.replicas must be between 1 and 1000")
	}
	if err := c.Limits.checkHandshakes(); err != nil {
		return err
	}
	return c.apiConfig().WithDefaults().Validate()
}

// handshakeConfig is the device listener's handshake admission.
func (l LimitsConf) handshakeConfig() tlslimit.Config {
	return tlslimit.Config{MaxHandshakes: l.MaxHandshakes, Queue: l.HandshakeQueue,
		Timeout: l.HandshakeTimeout, MaxWait: l.HandshakeWait}
}

// checkHandshakes bounds the handshake admission settings; 0 keeps a
// default.
func (l LimitsConf) checkHandshakes() error {
	switch {
	case l.MaxHandshakes < 0 || l.MaxHandshakes > tlslimit.MaxHandshakesLimit:
		return fmt.Errorf("config: limits.max_handshakes must be between 1 and %d (0: 4 × GOMAXPROCS)", tlslimit.MaxHandshakesLimit)
	case l.HandshakeQueue < 0 || l.HandshakeQueue > tlslimit.MaxQueue:
		return fmt.Errorf("config: limits.handshake_queue must be between 1 and %d", tlslimit.MaxQueue)
	case l.HandshakeTimeout != 0 && (l.HandshakeTimeout < time.Second || l.HandshakeTimeout > tlslimit.MaxTimeout):
		return fmt.Errorf("config: limits.handshake_timeout must be between 1s and %s", tlslimit.MaxTimeout)
	case l.HandshakeWait != 0 && (l.HandshakeWait < time.Second || l.HandshakeWait > tlslimit.MaxTimeout):
		return fmt.Errorf("config: limits.handshake_wait must be between 1s and %s", tlslimit.MaxTimeout)
	}
	return l.handshakeConfig().WithDefaults().Validate()
}

// apiConfig is the httpapi part. Rates are this replica's share of the
// configured ones (limits.replicas).
func (c *ServerConfig) apiConfig() httpapi.Config {
	l := c.Limits.perReplica()
	return httpapi.Config{
		PollInterval: c.PollInterval, PollJitter: c.PollJitter, DirectorExpiry: c.DirectorExpiry,
		MaxInFlight: l.MaxInFlight, MaxDownloads: l.MaxDownloads, DeviceRate: l.DeviceRate, DeviceBurst: l.DeviceBurst,
		AddrRate: l.AddrRate, AddrBurst: l.AddrBurst, LoginRate: l.LoginRate, LoginBurst: l.LoginBurst,
		EnrollRate: l.EnrollRate, EnrollBurst: l.EnrollBurst, RetryAfter: l.RetryAfter,
		Lockout:         koshin.LockoutPolicy{FreeAttempts: c.Lockout.FreeAttempts, BaseDelay: c.Lockout.BaseDelay, MaxDelay: c.Lockout.MaxDelay},
		SessionLifetime: c.SessionLifetime,
	}
}

// perReplica divides the rates by the number of replicas sharing them. A
// load balancer spreads one source's requests over the replicas, so the
// sum of the shares is the configured rate; bursts stay whole so that a
// legitimate burst that happens to land on one replica still passes.
func (l LimitsConf) perReplica() LimitsConf {
	if l.Replicas > 1 {
		n := float64(l.Replicas)
		l.DeviceRate, l.AddrRate, l.LoginRate, l.EnrollRate = l.DeviceRate/n, l.AddrRate/n, l.LoginRate/n, l.EnrollRate/n
	}
	return l
}

// checkFileSecrets refuses credentials in a configuration file: they come
// from the environment (or, for PostgreSQL, PGPASSWORD or a passfile), so
// the file can be shared between replicas and kept under version control.
func checkFileSecrets(k *koanf.Koanf) error {
	if dsn := k.String("postgres.dsn"); dsn != "" && dsnHasPassword(dsn) {
		return errors.New("postgres.dsn holds a password: give the DSN in KOSHIN_POSTGRES__DSN, or the password in PGPASSWORD or a passfile")
	}
	return nil
}
