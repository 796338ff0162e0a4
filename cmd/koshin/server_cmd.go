package main

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/koshin-ota/koshin/pki"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/koshin-ota/koshin/trust/repo"
)

func init() { register((*Main).serverCmd) }

// serverFlags are the flags that override the configuration file and the
// environment.
type serverFlags struct {
	config                        string
	dataDir, deviceAddr, mgmtAddr string
	imageDir, contentKeys, logLvl string
	hosts                         []string
}

func (m *Main) serverCmd() *cobra.Command {
	var f serverFlags
	c := &cobra.Command{
		Use:   "server",
		Short: "Run the update server (device API and management API)",
		Long: `Run the update server: the device API (TLS; mutual TLS after enrollment)
and the management API (TLS), backed by SQLite in the data directory, or
by PostgreSQL shared by any number of replicas (store: postgres, with the
DSN in KOSHIN_POSTGRES__DSN; docs/scale-out.md).

Configuration comes from --config (YAML), then KOSHIN_* environment
variables (KOSHIN_DATA_DIR, KOSHIN_LIMITS__DEVICE_RATE, ...), then flags.
The first start generates the server and device CAs and prints the server
CA's SHA-256 fingerprint. No account exists until one is created with
'koshin admin create'. The director's online key passphrase comes from
KOSHIN_PASSPHRASE or the terminal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return m.runServer(cmd, f) },
	}
	addServerFlags(c, &f)
	c.AddCommand(m.serverInitCmd())
	return c
}

func addServerFlags(c *cobra.Command, f *serverFlags) {
	fl := c.Flags()
	fl.StringVar(&f.config, "config", "", "configuration `FILE` (YAML)")
	fl.StringVar(&f.dataDir, "data-dir", "", "data `DIR` (database, PKI, director)")
	fl.StringVar(&f.deviceAddr, "device-listen", "", "device API `ADDR`")
	fl.StringVar(&f.mgmtAddr, "management-listen", "", "management API `ADDR`")
	fl.StringVar(&f.imageDir, "image-dir", "", "published image repository `DIR`")
	fl.StringVar(&f.contentKeys, "content-keys", "", "content keys `DIR` of encrypted releases")
	fl.StringVar(&f.logLvl, "log-level", "", "debug, info, warn or error")
	fl.StringSliceVar(&f.hosts, "host", nil, "`NAME` or address the server certificate covers (repeatable)")
}

// serverConfig loads file and environment, then applies the flags the
// user set.
func (m *Main) serverConfig(cmd *cobra.Command, f serverFlags) (ServerConfig, error) {
	cfg, err := loadServerConfig(f.config, os.Environ)
	if err != nil {
		return cfg, err
	}
	set := func(name string, dst *string, v string) {
		if cmd.Flags().Changed(name) {
			*dst = v
		}
	}
	set("data-dir", &cfg.DataDir, f.dataDir)
	set("device-listen", &cfg.DeviceListen, f.deviceAddr)
	set("management-listen", &cfg.ManagementListen, f.mgmtAddr)
	set("image-dir", &cfg.Image.Dir, f.imageDir)
	set("content-keys", &cfg.ContentKeysDir, f.contentKeys)
	set("log-level", &cfg.LogLevel, f.logLvl)
	if cmd.Flags().Changed("host") {
		cfg.Hosts = f.hosts
	}
	return cfg, nil
}

func (m *Main) runServer(cmd *cobra.Command, f serverFlags) error {
	cfg, err := m.serverConfig(cmd, f)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return usagef("log level %q: want debug, info, warn or error", cfg.LogLevel)
	}
	log := slog.New(slog.NewJSONHandler(m.Stderr, &slog.HandlerOptions{Level: level}))
	s := &ServerMain{Config: cfg, Now: m.Now, Log: log, Passphrase: m.Passphrase}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := s.Run(ctx); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "device API     %s\nmanagement API %s\nweb UI         %s\nserver CA SHA-256 fingerprint %s\n",
		s.DeviceURL(), s.ManagementURL(), s.UIURL(), s.PKI.ServerCAFingerprint())
	<-ctx.Done()
	log.Info("shutting down")
	return s.Close()
}

// serverInitCmd prepares a data directory: database, PKI and the
// director with its keys.
func (m *Main) serverInitCmd() *cobra.Command {
	var f serverFlags
	var channel, rootKeyOut string
	c := &cobra.Command{
		Use:   "init",
		Short: "Prepare a data directory: database, certificate authorities and director keys",
		Long: `Prepare a data directory for 'koshin server'.

It creates (or migrates) the database, the server and device certificate
authorities (printing the server CA fingerprint), and the director: a root
key and an online targets key, both as passphrase-encrypted key files
(passphrase from KOSHIN_PASSPHRASE or the terminal). The director root
key signs only the director's root metadata: move it off the server
(--root-key-out) and keep it offline like the image repository's root keys.

With store: postgres, run it once for the installation: it records the
fingerprints of the new keys in the database, and every replica gets a copy
of the data directory's pki/ and director/ (a replica with other keys
refuses to start).

No operator account is created: create the first administrator with
'koshin admin create --name NAME --role admin'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := m.serverConfig(cmd, f)
			if err != nil {
				return err
			}
			return m.initServer(cmd.Context(), cfg, trust.Channel(channel), rootKeyOut)
		},
	}
	addServerFlags(c, &f)
	c.Flags().StringVar(&channel, "channel", string(trust.ChannelRelease), "director channel: release or dev")
	c.Flags().StringVar(&rootKeyOut, "root-key-out", "", "write the director root key to `FILE` (default DATA/director/root.key)")
	return c
}

func (m *Main) initServer(ctx context.Context, cfg ServerConfig, channel trust.Channel, rootKeyOut string) error {
	if err := cfg.resolve(); err != nil {
		return err
	}
	if err := channel.Validate(); err != nil {
		return usageError{err}
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	db, err := openStore(ctx, &cfg, m.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer db.Close()
	a, err := pki.Open(pki.Options{Dir: filepath.Join(cfg.DataDir, pkiDir), Hosts: cfg.Hosts, Now: m.Now,
		CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile, CAFile: cfg.TLS.CAFile})
	if err != nil {
		return err
	}
	if rootKeyOut == "" {
		rootKeyOut = filepath.Join(cfg.Dir.Dir, "root.key")
	}
	d, err := m.initDirector(cfg, channel, rootKeyOut)
	if err != nil {
		return err
	}
	root1, err := d.RootVersion(1)
	if err != nil {
		return err
	}
	// Replicas started later on the same database check their copy of the
	// key directory against these.
	if err := claimKeys(ctx, db, a, root1); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "data directory %s ready\nserver CA SHA-256 fingerprint %s\n", cfg.DataDir, a.ServerCAFingerprint())
	fmt.Fprintf(m.Stdout, "director root key %s: move it offline\n", rootKeyOut)
	fmt.Fprintln(m.Stdout, "no operator exists yet: run 'koshin admin create --name NAME --role admin'")
	return nil
}

// initDirector generates the director's keys and root 1. An existing
// director is left alone (repo.InitDirector refuses to overwrite).
func (m *Main) initDirector(cfg ServerConfig, channel trust.Channel, rootKeyOut string) (*repo.Director, error) {
	if _, err := os.Stat(filepath.Join(cfg.Dir.Dir, "director.json")); err == nil {
		return nil, fmt.Errorf("%s already holds a director", cfg.Dir.Dir)
	}
	if strings.HasPrefix(cfg.Dir.Key, "pkcs11:") {
		return nil, usagef("director.key is a PKCS#11 URI: generate the key on the token and initialise the director with it")
	}
	root, err := keys.Generate(keys.Ed25519)
	if err != nil {
		return nil, err
	}
	targets, err := keys.Generate(keys.Ed25519)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir.Dir, 0o700); err != nil {
		return nil, err
	}
	for _, k := range []struct {
		path   string
		signer crypto.Signer
		what   string
	}{{rootKeyOut, root, "director root key"}, {cfg.Dir.Key, targets, "director targets key"}} {
		pass, err := m.Passphrase("passphrase for the new " + k.what + ": ")
		if err != nil {
			return nil, err
		}
		err = keys.WriteKeyFile(k.path, k.signer, pass, m.KDF)
		clear(pass)
		if err != nil {
			return nil, err
		}
	}
	return repo.InitDirector(cfg.Dir.Dir, m.Now(), repo.DirectorOptions{Channel: channel, RootKeys: []crypto.Signer{root}, Targets: targets})
}
