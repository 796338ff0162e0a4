package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// cipherSuites are the TLS 1.2 suites offered: forward secrecy (ECDHE) and
// AEAD only (CCDS STS07). TLS 1.3 suites are not configurable and all good.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

func (a *Authority) baseTLS() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   cipherSuites,
		GetCertificate: a.Certificate,
	}
}

// ManagementTLSConfig is the management API's configuration: server
// authentication only; operators authenticate with passwords and tokens.
func (a *Authority) ManagementTLSConfig() *tls.Config { return a.baseTLS() }

// DeviceTLSConfig is the device API's configuration. A client certificate
// is optional at the TLS layer, because enrollment happens before a device
// has one, but any certificate presented must chain to the device CA for
// client authentication, or the handshake fails (CCDS UPD08, STS12).
// Whether the device may use the request is decided per request (status,
// serial, expiry) by the HTTP layer, using Identify.
func (a *Authority) DeviceTLSConfig() *tls.Config {
	c := a.baseTLS()
	c.ClientAuth = tls.RequestClientCert
	c.VerifyConnection = a.verifyConnection
	return c
}

// ErrUnknownDevice is returned for a client certificate the device CA did
// not issue.
var ErrUnknownDevice = errors.New("client certificate not issued by the device CA")

// verifyConnection checks a presented client certificate against the device
// CA. It runs on full and resumed handshakes. A certificate within
// RenewalGrace after its expiry passes here so that its device can renew;
// the HTTP layer refuses it everywhere else.
func (a *Authority) verifyConnection(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	return a.VerifyDevice(cs.PeerCertificates[0], cs.PeerCertificates[1:])
}

// VerifyDevice checks that leaf chains to the device CA for client
// authentication at the authority's clock, tolerating expiry up to
// RenewalGrace. Intermediates are refused: the device CA issues directly.
func (a *Authority) VerifyDevice(leaf *x509.Certificate, intermediates []*x509.Certificate) error {
	if len(intermediates) != 0 {
		return fmt.Errorf("%w: unexpected intermediate certificates", ErrUnknownDevice)
	}
	at := a.opts.Now()
	if at.After(leaf.NotAfter) && at.Before(leaf.NotAfter.Add(a.opts.RenewalGrace)) {
		at = leaf.NotAfter
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:       a.devices,
		CurrentTime: at,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnknownDevice, err)
	}
	return nil
}

// Identify returns the device identity of a connection's client
// certificate, or nil if it presented none. It relies on DeviceTLSConfig's
// handshake verification and must only be used on connections made with it.
func Identify(cs *tls.ConnectionState) *DeviceIdentity {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return nil
	}
	return identityOf(cs.PeerCertificates[0])
}

// DevicePool is a pool holding the device CA, for clients of tests.
func (a *Authority) DevicePool() *x509.CertPool { return a.devices.Clone() }

// ServerPool is a pool holding the CA devices and clients pin; nil with an
// operator-provided certificate and no CA bundle.
func (a *Authority) ServerPool() *x509.CertPool {
	if len(a.caPEM) == 0 {
		return nil
	}
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(a.caPEM)
	return p
}
