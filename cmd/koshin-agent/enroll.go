package main

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/koshin-ota/koshin/agent/deviceclient"
	"github.com/koshin-ota/koshin/agent/identity"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/encryption"
	"github.com/koshin-ota/koshin/trust/verify"
)

type enrollFlags struct {
	token, tokenFile, serial, serverCA, imageRoot, directorRoot, channel string
	preauthorized                                                        bool
}

func (e *enrollFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&e.token, "token", "", "one-time enrollment `token` (or KOSHIN_ENROLL_TOKEN, or -token-file)")
	fs.StringVar(&e.tokenFile, "token-file", "", "`file` holding the one-time enrollment token")
	fs.BoolVar(&e.preauthorized, "preauthorized", false, "enroll against the factory pre-authorisation list (no token)")
	fs.StringVar(&e.serial, "serial", "", "serial `number` (default: from the configuration)")
	fs.StringVar(&e.serverCA, "server-ca", "", "PEM `file` of the CA of the server's TLS certificate (default: system roots)")
	fs.StringVar(&e.imageRoot, "image-root", "", "image repository root.json `file` to provision")
	fs.StringVar(&e.directorRoot, "director-root", "", "director root.json `file` to provision")
	fs.StringVar(&e.channel, "channel", "", "channel of the roots: release or dev (default: the configuration's)")
}

// enrollCmd enrolls the device (CCDS HLC04/HLC05): keys generated here,
// never a shared secret; the server's device CA certifies the public key.
func (m *Main) enrollCmd(args []string) error {
	var ef enrollFlags
	cfg, fs, err := m.runConfig("enroll", args, ef.register)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	if ef.channel != "" {
		cfg.Channel = trust.Channel(ef.channel)
	}
	if err := checkEnrollConfig(cfg); err != nil {
		return err
	}
	token, err := m.enrollToken(&ef)
	if err != nil {
		return err
	}
	if err := provision(cfg, ef.imageRoot, ef.directorRoot, m.Stdout); err != nil {
		return err
	}
	serial := ef.serial
	if serial == "" {
		if serial, err = cfg.ReadSerial(); err != nil {
			return fmt.Errorf("serial: %w (pass -serial or set serial/serial_file)", err)
		}
	} else if err := trust.ValidateID("serial", serial); err != nil {
		return err
	}
	return m.enroll(cfg, serial, token, ef.serverCA)
}

func checkEnrollConfig(cfg *Config) error {
	u, err := url.Parse(cfg.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%w: -server must be an https URL", errUsage)
	}
	if err := trust.ValidateID("hardware ID", cfg.HardwareID); err != nil {
		return fmt.Errorf("%w: -hardware-id: %v", errUsage, err)
	}
	if !filepath.IsAbs(cfg.StateDir) {
		return fmt.Errorf("%w: -state-dir must be absolute", errUsage)
	}
	return cfg.Channel.Validate()
}

// enrollToken picks the credential: exactly one of a token and
// -preauthorized. A token from a file or the environment stays out of the
// process list.
func (m *Main) enrollToken(ef *enrollFlags) (string, error) {
	token := ef.token
	if ef.tokenFile != "" {
		b, err := os.ReadFile(ef.tokenFile)
		if err != nil {
			return "", err
		}
		token = strings.TrimSpace(string(b))
	}
	if token == "" {
		token = m.Getenv("KOSHIN_ENROLL_TOKEN")
	}
	if (token == "") == !ef.preauthorized {
		return "", fmt.Errorf("%w: give an enrollment token or -preauthorized, not both", errUsage)
	}
	return token, nil
}

// provision writes the trusted roots, once (verify.Provision refuses a
// dev root on a release device, CCDS UPC04, and a second provisioning).
func provision(cfg *Config, imageRoot, directorRoot string, out io.Writer) error {
	dir := cfg.dir(trustDir)
	have := fileExists(filepath.Join(dir, "image", "root.json"))
	if imageRoot == "" && directorRoot == "" {
		if !have {
			return fmt.Errorf("%w: this device has no trusted roots: pass -image-root and -director-root", errUsage)
		}
		return nil
	}
	if imageRoot == "" || directorRoot == "" {
		return fmt.Errorf("%w: -image-root and -director-root go together", errUsage)
	}
	img, err := readLimited(imageRoot, verify.DefaultMaxRootSize)
	if err != nil {
		return err
	}
	dr, err := readLimited(directorRoot, verify.DefaultMaxRootSize)
	if err != nil {
		return err
	}
	err = verify.Provision(dir, img, dr, cfg.Channel)
	if errors.Is(err, verify.ErrProvisioned) {
		fmt.Fprintln(out, "trusted roots already provisioned; kept (the device walks the root chain to newer roots itself)")
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "trusted roots provisioned for channel %s\n", cfg.Channel)
	return nil
}

func (m *Main) enroll(cfg *Config, serial, token, serverCA string) error {
	store := identity.Store{Dir: cfg.dir(identityDir)}
	id, err := store.Generate()
	if err != nil {
		return err
	}
	roots := id.ServerCA
	if serverCA != "" {
		b, err := readLimited(serverCA, 1<<20)
		if err != nil {
			return err
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(b) {
			return fmt.Errorf("%s: no PEM certificate", serverCA)
		}
	}
	csr, err := id.CSR()
	if err != nil {
		return err
	}
	encKey, err := encryption.MarshalDevicePublicKey(id.Encryption.PublicKey())
	if err != nil {
		return err
	}
	hc := verify.NewHTTPClient(deviceclient.TLSConfig(roots, deviceclient.NewCertificate(id)))
	resp, err := deviceapi.NewClient(cfg.Server, hc).Enroll(context.Background(), deviceapi.EnrollRequest{
		CSR: csr, Serial: serial, HardwareID: cfg.HardwareID, Token: token, EncryptionKey: encKey})
	if err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	if err := store.SaveEnrollment(id, resp.Certificate, resp.ServerCA, identity.Enrollment{
		DeviceID: resp.DeviceID, Serial: serial, HardwareID: cfg.HardwareID, Server: cfg.Server}); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "enrolled as device %s (serial %s)\n", id.ID, serial)
	return nil
}

// identityCmd prints the device's identity, generating the keys if the
// device has none: the factory exports the public key for the server's
// pre-authorisation list (CCDS HLC05) before the device ever enrolls.
func (m *Main) identityCmd(args []string) error {
	var csv bool
	var serial string
	cfg, fs, err := m.runConfig("identity", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&csv, "csv", false, "print a pre-authorisation CSV line (serial,hardware_id,public_key)")
		fs.StringVar(&serial, "serial", "", "serial `number` for -csv (default: from the configuration)")
	})
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	id, err := identity.Store{Dir: cfg.dir(identityDir)}.Generate()
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(id.Key.Public())
	if err != nil {
		return err
	}
	pub := base64.StdEncoding.EncodeToString(der)
	if !csv {
		fmt.Fprintf(m.Stdout, "device_id   %s\npublic_key  %s\nenrolled    %t\n", id.ID, pub, id.Enrolled())
		return nil
	}
	if serial == "" {
		if serial, err = cfg.ReadSerial(); err != nil {
			return fmt.Errorf("serial: %w (pass -serial)", err)
		}
	}
	if err := trust.ValidateID("hardware ID", cfg.HardwareID); err != nil {
		return fmt.Errorf("%w: -hardware-id: %v", errUsage, err)
	}
	fmt.Fprintf(m.Stdout, "serial,hardware_id,public_key\n%s,%s,%s\n", serial, cfg.HardwareID, pub)
	return nil
}

func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return b, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
