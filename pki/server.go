package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"slices"
)

// RenewServer issues a new server certificate if the current one is
// missing, does not cover the configured hosts, or has less than a third of
// its validity left. Call it periodically (daily) on a long-running server;
// connections pick up the new certificate without a restart. It does
// nothing with an operator-provided certificate.
func (a *Authority) RenewServer() error {
	if a.serverCA == nil {
		return nil
	}
	cert, err := a.loadServer()
	if err != nil {
		return err
	}
	if cert == nil || a.needsRenewal(cert.Leaf) {
		if cert, err = a.issueServer(); err != nil {
			return err
		}
	}
	a.server.Store(cert)
	return nil
}

func (a *Authority) loadServer() (*tls.Certificate, error) {
	data, err := readLimited(a.path(serverFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	key, leaf, err := decodeKeyPair(data)
	if err != nil {
		a.opts.Log.Warn("replacing unreadable server certificate", "file", a.path(serverFile), "err", err)
		return nil, nil
	}
	if leaf.CheckSignatureFrom(a.serverCA.Cert) != nil {
		a.opts.Log.Warn("replacing server certificate not issued by the server CA")
		return nil, nil
	}
	return &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

func (a *Authority) needsRenewal(leaf *x509.Certificate) bool {
	now := a.opts.Now()
	left := leaf.NotAfter.Sub(now)
	if left < leaf.NotAfter.Sub(leaf.NotBefore)/3 || now.Before(leaf.NotBefore) {
		return true
	}
	for _, h := range a.opts.Hosts {
		if leaf.VerifyHostname(h) != nil {
			return true
		}
	}
	return false
}

func (a *Authority) issueServer() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := a.opts.Now()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: serverCommonName, Organization: []string{"koshin"}},
		NotBefore:   now.Add(-backdate),
		NotAfter:    now.Add(a.opts.ServerValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range a.opts.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	leaf, err := a.serverCA.sign(tmpl, key.Public())
	if err != nil {
		return nil, err
	}
	if err := a.writeKeyPair(serverFile, key, leaf); err != nil {
		return nil, err
	}
	a.opts.Log.Info("issued server certificate", "hosts", a.opts.Hosts, "not_after", leaf.NotAfter, "sha256", Fingerprint(leaf))
	return &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// loadProvided loads an operator-provided certificate, key and CA bundle.
func (a *Authority) loadProvided() error {
	cert, err := tls.LoadX509KeyPair(a.opts.CertFile, a.opts.KeyFile)
	if err != nil {
		return fmt.Errorf("pki: server certificate: %w", err)
	}
	if a.opts.CAFile != "" {
		if a.caPEM, err = readLimited(a.opts.CAFile); err != nil {
			return fmt.Errorf("pki: CA bundle: %w", err)
		}
		if b, _ := pem.Decode(a.caPEM); b == nil {
			return fmt.Errorf("pki: CA bundle %s holds no PEM certificate", a.opts.CAFile)
		}
	}
	a.server.Store(&cert)
	return nil
}

// Certificate returns the current server certificate, for tls.Config's
// GetCertificate.
func (a *Authority) Certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return a.server.Load(), nil
}

// ServerCAPEM is the CA certificate devices and clients should pin; empty
// with an operator-provided certificate and no CAFile (then the system
// roots apply).
func (a *Authority) ServerCAPEM() []byte { return slices.Clone(a.caPEM) }

// ServerCAFingerprint is the SHA-256 fingerprint of the server CA, printed
// at start so that operators can check what their clients pin; empty with
// an operator-provided certificate.
func (a *Authority) ServerCAFingerprint() string {
	if a.serverCA == nil {
		return ""
	}
	return Fingerprint(a.serverCA.Cert)
}

// ServerCertificate is the current server certificate's leaf.
func (a *Authority) ServerCertificate() *x509.Certificate {
	c := a.server.Load()
	if c == nil {
		return nil
	}
	if c.Leaf != nil {
		return c.Leaf
	}
	leaf, _ := x509.ParseCertificate(c.Certificate[0])
	return leaf
}

// DeviceCA is the device CA's certificate.
func (a *Authority) DeviceCA() *x509.Certificate { return a.deviceCA.Cert }
