package deviceclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/koshin-ota/koshin/trust/verify"
)

// maxRedirects bounds a download's redirect chain (server → presigned
// bucket URL or CDN is one hop).
const maxRedirects = 5

// DownloadClient returns the HTTP client for metadata and payload
// downloads. Requests to the koshin server (serverURL's host) use server,
// the mutual-TLS configuration pinned to the server CA. A server backed by
// S3 or a CDN answers payload requests with a redirect to another host;
// those connections verify the host against publicRoots (nil: the system's
// roots) and present no client certificate, since the device's identity is
// none of a bucket's business. Nothing downloaded is trusted for being
// served over TLS — every byte is verified against signed metadata — so
// the public roots protect only confidentiality of the transfer.
// Redirects from https to plain http are refused.
func DownloadClient(serverURL string, server *tls.Config, publicRoots *x509.CertPool) (*http.Client, error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("download client: server URL %q", serverURL)
	}
	serverAddr := hostPort(u)
	public := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: publicRoots}
	c := verify.NewHTTPClient(server)
	tr := c.Transport.(*http.Transport)
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		cfg := public
		if addr == serverAddr {
			cfg = tr.TLSClientConfig
		}
		cfg = cfg.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		return (&tls.Dialer{NetDialer: dialer, Config: cfg}).DialContext(ctx, network, addr)
	}
	c.CheckRedirect = checkRedirect
	return c, nil
}

var errDowngrade = errors.New("refusing a redirect from https to http")

func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if via[len(via)-1].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return errDowngrade
	}
	return nil
}

// hostPort is u's host with the scheme's default port made explicit, as
// the transport passes it to DialTLSContext.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	return net.JoinHostPort(u.Hostname(), "443")
}
