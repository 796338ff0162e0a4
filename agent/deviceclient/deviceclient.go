// Package deviceclient connects the agent's engine to the update server:
// it adapts deviceapi.Client (device API v1 over mutual TLS) to
// agent.Server, builds the device's TLS configuration from its identity,
// and renews the device certificate before it expires.
package deviceclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/identity"
	"github.com/koshin-ota/koshin/deviceapi"
)

// Server is the production agent.Server.
type Server struct {
	Client *deviceapi.Client
}

var _ agent.Server = (*Server)(nil)

// CheckIn implements agent.Server.
func (s *Server) CheckIn(ctx context.Context, c deviceapi.CheckIn) (deviceapi.CheckInResponse, error) {
	resp, err := s.Client.CheckIn(ctx, c)
	return resp, wrap(err)
}

// Events implements agent.Server.
func (s *Server) Events(ctx context.Context, b deviceapi.EventBatch) error {
	return wrap(s.Client.Events(ctx, b))
}

// retryAfter carries the server's Retry-After to the engine's back-off
// (agent.RetryAfter), which waits at least that long (EN 303 645 5.9-3).
type retryAfter struct {
	err error
	d   time.Duration
}

func (e *retryAfter) Error() string             { return e.err.Error() }
func (e *retryAfter) Unwrap() error             { return e.err }
func (e *retryAfter) RetryAfter() time.Duration { return e.d }
func (e *retryAfter) Is(target error) bool      { return false }

var _ agent.RetryAfter = (*retryAfter)(nil)

func wrap(err error) error {
	var se *deviceapi.StatusError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		return &retryAfter{err: err, d: se.RetryAfter}
	}
	return err
}

// NotEnrolled is the agent.Server of a device without a certificate, e.g.
// after a factory reset: every call fails, so the engine keeps working
// locally (offline bundles, status) until the device enrolls again.
type NotEnrolled struct{}

// CheckIn implements agent.Server.
func (NotEnrolled) CheckIn(context.Context, deviceapi.CheckIn) (deviceapi.CheckInResponse, error) {
	return deviceapi.CheckInResponse{}, identity.ErrNotEnrolled
}

// Events implements agent.Server.
func (NotEnrolled) Events(context.Context, deviceapi.EventBatch) error {
	return identity.ErrNotEnrolled
}

// URLs returns the image metadata, director metadata and payload base URLs
// of the device API at server.
func URLs(server string) (image, director, targets string) {
	base := strings.TrimRight(server, "/")
	trim := func(p string) string { return base + strings.TrimSuffix(p, "/") }
	return trim(deviceapi.PathImage), trim(deviceapi.PathDirector), trim(deviceapi.PathTargets)
}

// Certificate holds the device certificate for TLS; Renew swaps it while
// connections keep working.
type Certificate struct {
	cur atomic.Pointer[tls.Certificate]
}

// NewCertificate starts with the identity's certificate (nil before
// enrollment).
func NewCertificate(id *identity.Identity) *Certificate {
	c := &Certificate{}
	if cert, err := id.TLSCertificate(); err == nil {
		c.cur.Store(cert)
	}
	return c
}

// Set replaces the certificate.
func (c *Certificate) Set(cert *tls.Certificate) { c.cur.Store(cert) }

// Leaf returns the current certificate, parsed (nil before enrollment).
func (c *Certificate) Leaf() *x509.Certificate {
	cur := c.cur.Load()
	if cur == nil || len(cur.Certificate) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(cur.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf
}

// TLSConfig is the device's client configuration: TLS 1.2 or later (CCDS
// STS07), the server CA pinned at enrollment (or roots when nil: the
// system's), and the device certificate for mutual TLS.
func TLSConfig(roots *x509.CertPool, cert *Certificate) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    roots,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cur := cert.cur.Load(); cur != nil {
				return cur, nil
			}
			return &tls.Certificate{}, nil // enrollment: no client certificate yet
		},
	}
}

// Renewer re-enrolls the device's key before its certificate expires: an
// enrolled key needs no credential, it is the identity.
type Renewer struct {
	Store  identity.Store
	ID     *identity.Identity
	Client *deviceapi.Client
	Cert   *Certificate
	// Before is how long before expiry to renew (default 30 days).
	Before time.Duration
	Now    func() time.Time
}

// Due reports whether the certificate should be renewed now.
func (r *Renewer) Due() bool {
	leaf := r.Cert.Leaf()
	before := r.Before
	if before <= 0 {
		before = 30 * 24 * time.Hour
	}
	return leaf != nil && r.Now().Add(before).After(leaf.NotAfter)
}

// Renew enrolls again and installs the new certificate.
func (r *Renewer) Renew(ctx context.Context) error {
	csr, err := r.ID.CSR()
	if err != nil {
		return err
	}
	e := r.ID.Enrollment
	resp, err := r.Client.Enroll(ctx, deviceapi.EnrollRequest{CSR: csr, Serial: e.Serial, HardwareID: e.HardwareID})
	if err != nil {
		return fmt.Errorf("renew certificate: %w", err)
	}
	if err := r.Store.SaveEnrollment(r.ID, resp.Certificate, resp.ServerCA, identity.Enrollment{
		DeviceID: resp.DeviceID, Serial: e.Serial, HardwareID: e.HardwareID, Server: e.Server}); err != nil {
		return err
	}
	id, err := r.Store.Load()
	if err != nil {
		return err
	}
	cert, err := id.TLSCertificate()
	if err != nil {
		return err
	}
	r.ID = id
	r.Cert.Set(cert)
	return nil
}
