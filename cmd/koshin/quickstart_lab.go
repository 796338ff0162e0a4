package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/password"
	"github.com/koshin-ota/koshin/sim"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/koshin-ota/koshin/trust/repo"
)

// The lab's demo product: one board, one A/B root file system.
const (
	labHardware  = "demo-board"
	labComponent = "rootfs"
	labAdmin     = "quickstart-admin"
)

// labRelease is one signed release of the demo image.
type labRelease struct {
	name    string
	version string
	counter uint64
}

var labReleases = []labRelease{{"demo-os-1.0", "1.0", 1}, {"demo-os-1.1", "1.1", 2}}

// lab is a throw-away installation in one directory: an image
// repository whose keys live in memory, holding releases 1.0 and 1.1 of
// a demo image; a real `koshin server` on 127.0.0.1 (SQLite and files in
// DIR/data) that imported them; and an administrator with a random
// password, logged in to the management API.
type lab struct {
	dir        string
	published  string
	passphrase []byte
	srv        *ServerMain
	admin      string
	password   string
	api        *apiClient
	imageRoot  []byte
}

// labOptions vary a lab (tests make it cheap and tick the engine
// themselves).
type labOptions struct {
	imageSize int
	// config adjusts the server configuration before the first start.
	config       func(*ServerConfig)
	manualEngine bool
	password     password.Params
	kdf          keys.KDFParams
	log          io.Writer
}

// newLab builds a lab in dir, which must exist.
func newLab(ctx context.Context, m *Main, dir string, o labOptions) (l *lab, err error) {
	l = &lab{dir: dir, published: filepath.Join(dir, "published"), passphrase: []byte(hex.EncodeToString(randomKey(16)))}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	if err := l.signReleases(m.Now, o.imageSize); err != nil {
		return nil, err
	}
	cfg := l.serverConfig(o)
	im := *m
	im.Stdout, im.KDF = io.Discard, o.kdf
	im.Passphrase = l.passphraseFunc
	if err := im.initServer(ctx, cfg, trust.ChannelRelease, ""); err != nil {
		return nil, fmt.Errorf("initialise server: %w", err)
	}
	logw := o.log
	if logw == nil {
		logw = io.Discard
	}
	l.srv = &ServerMain{Config: cfg, Now: m.Now, Passphrase: l.passphraseFunc, ManualEngine: o.manualEngine,
		Password: o.password, Log: slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	if err := l.srv.Run(ctx); err != nil {
		l.srv = nil
		return nil, fmt.Errorf("start server: %w", err)
	}
	if err := l.createAdmin(ctx, o.password); err != nil {
		return nil, err
	}
	return l, l.importReleases(ctx)
}

func (l *lab) passphraseFunc(string) ([]byte, error) { return bytes.Clone(l.passphrase), nil }

// close stops the server.
func (l *lab) close() {
	if l.srv != nil {
		l.srv.Close()
		l.srv = nil
	}
}

// serverConfig is `koshin server`'s configuration for the lab: loopback
// only, the shortest poll interval the server allows, a fast engine, and
// per-address limits raised because every simulated device may share
// 127.0.0.1.
func (l *lab) serverConfig(o labOptions) ServerConfig {
	cfg := defaultServerConfig()
	cfg.DataDir = filepath.Join(l.dir, "data")
	cfg.DeviceListen, cfg.ManagementListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Image.Dir = l.published
	cfg.PollInterval, cfg.PollJitter = koshin.MinPollInterval, koshin.MinPollInterval/2
	cfg.EngineInterval = time.Second
	cfg.Limits.AddrRate, cfg.Limits.AddrBurst = 10_000, 20_000
	cfg.Limits.EnrollRate, cfg.Limits.EnrollBurst = 1_000, 2_000
	cfg.Limits.MaxInFlight = 4096
	if o.config != nil {
		o.config(&cfg)
	}
	return cfg
}

// signReleases creates a release-channel image repository with one
// in-memory key per role, signs releases 1.0 and 1.1 of the demo image and
// publishes it where the server serves it from.
func (l *lab) signReleases(now func() time.Time, size int) error {
	r, err := repo.Init(filepath.Join(l.dir, "image-repo"), repo.InitOptions{Channel: trust.ChannelRelease, Now: now})
	if err != nil {
		return err
	}
	defer r.Close()
	signers := map[string]crypto.Signer{}
	for _, role := range []string{"root", "targets", "snapshot", "timestamp"} {
		signers[role] = newDemoKey()
		if err := r.AddKey(role, signers[role].Public(), ""); err != nil {
			return fmt.Errorf("add %s key: %w", role, err)
		}
	}
	rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
	for _, rel := range labReleases {
		c := trust.TargetCustom{HardwareIDs: []string{labHardware}, Component: labComponent,
			ReleaseCounter: rel.counter, Version: rel.version, Channel: trust.ChannelRelease}
		if err := r.AddTarget(rel.name, bytes.NewReader(demoImage(rng, size)), c, nil); err != nil {
			return fmt.Errorf("add %s: %w", rel.name, err)
		}
	}
	for _, role := range []string{"root", "targets"} {
		if err := r.Sign(role, signers[role]); err != nil {
			return fmt.Errorf("sign %s: %w", role, err)
		}
	}
	if _, err := r.Commit(now(), repo.OnlineKeys{Snapshot: signers["snapshot"], Timestamp: signers["timestamp"]}); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := r.Publish(l.published); err != nil {
		return err
	}
	l.imageRoot, err = os.ReadFile(filepath.Join(l.published, "1.root.json"))
	return err
}

// demoImage is n bytes that look like a file system image: runs of random
// data between empty blocks.
func demoImage(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		if rng.IntN(4) != 0 {
			for j := i; j < min(i+4096, n); j++ {
				b[j] = byte(rng.Uint32())
			}
		}
	}
	return b
}

// createAdmin creates the administrator with a random password, as
// `koshin admin create` does on the server's machine (there is no default
// account), and logs in.
func (l *lab) createAdmin(ctx context.Context, p password.Params) error {
	l.admin, l.password = labAdmin, randomPassword(labAdmin)
	if p == (password.Params{}) {
		p = password.Default
	}
	if err := createOperator(ctx, l.srv.Store, l.admin, koshin.RoleAdmin, l.password, p); err != nil {
		return fmt.Errorf("create administrator: %w", err)
	}
	tc := &tls.Config{RootCAs: l.srv.PKI.ServerPool(), MinVersion: tls.VersionTLS12}
	l.api = &apiClient{base: l.srv.ManagementURL(), http: &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: tc}}}
	var s struct{ Token string }
	if err := l.api.do(ctx, "POST", "/api/v1/sessions", map[string]string{"name": l.admin, "password": l.password}, &s); err != nil {
		return fmt.Errorf("log in: %w", err)
	}
	l.api.token = s.Token
	return nil
}

// importReleases imports the published releases into the server.
func (l *lab) importReleases(ctx context.Context) error {
	var imported struct{ Imported []string }
	if err := l.api.do(ctx, "POST", "/api/v1/releases/import", nil, &imported); err != nil {
		return fmt.Errorf("import releases: %w", err)
	}
	if len(imported.Imported) != len(labReleases) {
		return fmt.Errorf("import releases: imported %v", imported.Imported)
	}
	return nil
}

// serverCA is the PEM certificate devices pin.
func (l *lab) serverCA() []byte { return l.srv.PKI.ServerCAPEM() }

// directorRoot is the director's first root, provisioned on devices.
func (l *lab) directorRoot() ([]byte, error) { return l.srv.Director.RootVersion(1) }

// preauthorize uploads the pre-authorisation list of a simulated fleet,
// in uploads of at most koshin.MaxPreAuthorizations devices.
func (l *lab) preauthorize(ctx context.Context, seed, prefix, group string, n int) error {
	for from := 0; from < n; from += koshin.MaxPreAuthorizations {
		csv := sim.PreauthCSV(seed, prefix, labHardware, group, nil, from, min(n, from+koshin.MaxPreAuthorizations))
		if err := l.api.do(ctx, "POST", "/api/v1/preauthorizations", rawBody{csv, "text/csv"}, nil); err != nil {
			return fmt.Errorf("pre-authorise devices: %w", err)
		}
	}
	return nil
}
