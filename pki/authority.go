package pki

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/koshin-ota/koshin/internal/atomicfile"
)

// File names in Options.Dir; see the package documentation.
const (
	serverCAFile     = "server-ca.key.pem"
	serverCAPublic   = "server-ca.crt"
	serverFile       = "server.key.pem"
	deviceCAFile     = "device-ca.key.pem"
	deviceCAPublic   = "device-ca.crt"
	dirMode          = 0o700
	privateFileMode  = 0o600
	publicFileMode   = 0o644
	serverCommonName = "koshin server"
)

// Options configure an Authority.
type Options struct {
	// Dir holds the generated keys and certificates.
	Dir string
	// Hosts are the DNS names and IP addresses the server certificate
	// covers; devices and the CLI must reach the server by one of them.
	// Empty means localhost, 127.0.0.1 and ::1.
	Hosts []string
	// CertFile and KeyFile name an operator-provided server certificate
	// chain and key (PEM); CAFile the CA bundle devices should pin. When
	// CertFile is set, no server CA or server certificate is generated.
	CertFile, KeyFile, CAFile string
	// ServerValidity and DeviceValidity default to DefaultServerValidity and
	// DefaultDeviceValidity.
	ServerValidity, DeviceValidity time.Duration
	// RenewalGrace is how long after expiry a device may still renew its
	// certificate (proving possession of its key); 0 means DefaultRenewalGrace.
	RenewalGrace time.Duration
	Now          func() time.Time
	Log          *slog.Logger
}

// DefaultRenewalGrace lets a device that was switched off for a long time
// renew an expired certificate instead of needing a new identity.
const DefaultRenewalGrace = 2 * 365 * 24 * time.Hour

func (o *Options) setDefaults() {
	if len(o.Hosts) == 0 {
		o.Hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	if o.ServerValidity == 0 {
		o.ServerValidity = DefaultServerValidity
	}
	if o.DeviceValidity == 0 {
		o.DeviceValidity = DefaultDeviceValidity
	}
	if o.RenewalGrace == 0 {
		o.RenewalGrace = DefaultRenewalGrace
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Authority holds the server's TLS identity and the device CA.
type Authority struct {
	opts     Options
	serverCA *CA // nil with an operator-provided certificate
	deviceCA *CA
	caPEM    []byte // what devices pin
	devices  *x509.CertPool
	server   atomic.Pointer[tls.Certificate]
}

// Open loads the authority from opts.Dir, creating whatever is missing:
// the CAs on the first start, the server certificate whenever it is
// missing, no longer covers Hosts, or is within a third of its validity
// from expiry.
func Open(opts Options) (*Authority, error) {
	opts.setDefaults()
	if opts.Dir == "" {
		return nil, errors.New("pki: a directory is required")
	}
	if err := os.MkdirAll(opts.Dir, dirMode); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	a := &Authority{opts: opts}
	var err error
	if a.deviceCA, err = a.loadOrCreateCA(deviceCAFile, deviceCAPublic, "koshin device CA"); err != nil {
		return nil, err
	}
	a.devices = x509.NewCertPool()
	a.devices.AddCert(a.deviceCA.Cert)
	if opts.CertFile != "" {
		return a, a.loadProvided()
	}
	if a.serverCA, err = a.loadOrCreateCA(serverCAFile, serverCAPublic, "koshin server CA"); err != nil {
		return nil, err
	}
	a.caPEM = CertPEM(a.serverCA.Cert)
	return a, a.RenewServer()
}

func (a *Authority) path(name string) string { return filepath.Join(a.opts.Dir, name) }

// loadOrCreateCA reads a CA's private file or creates the CA, then
// (re)writes its public certificate file.
func (a *Authority) loadOrCreateCA(private, public, cn string) (*CA, error) {
	data, err := readLimited(a.path(private))
	var ca *CA
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if ca, err = newCA(cn+" "+randomSuffix(), a.opts.Now()); err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
		if err := a.writeKeyPair(private, ca.Key, ca.Cert); err != nil {
			return nil, err
		}
		a.opts.Log.Info("created certificate authority", "name", ca.Cert.Subject.CommonName, "sha256", Fingerprint(ca.Cert))
	case err != nil:
		return nil, fmt.Errorf("pki: %w", err)
	default:
		key, cert, err := decodeKeyPair(data)
		if err != nil {
			return nil, fmt.Errorf("pki: %s: %w", private, err)
		}
		if !cert.IsCA {
			return nil, fmt.Errorf("pki: %s is not a CA certificate", private)
		}
		ca = &CA{Cert: cert, Key: key}
	}
	if err := atomicfile.WriteFile(a.path(public), CertPEM(ca.Cert), publicFileMode); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return ca, nil
}

// writeKeyPair atomically replaces the private file name.
func (a *Authority) writeKeyPair(name string, key crypto.Signer, cert *x509.Certificate) error {
	data, err := encodeKeyPair(key, cert)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := atomicfile.WriteFile(a.path(name), data, privateFileMode); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

func readLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err == nil && len(b) > maxPEMFile {
		err = fmt.Errorf("%s is larger than %d bytes", name, maxPEMFile)
	}
	return b, err
}

func randomSuffix() string { return hex.EncodeToString(newSerial().Bytes())[:8] }
