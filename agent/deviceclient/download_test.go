package deviceclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A koshin server that requires the device certificate redirects a payload
// request to a bucket with its own certificate: the download follows it,
// verifies the bucket against the public roots and shows it no client
// certificate; a redirect down to plain http is refused.
func TestDownloadClientRedirect(t *testing.T) {
	bucket := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) != 0 {
			http.Error(w, "client certificate shown to the bucket", http.StatusBadRequest)
			return
		}
		io.WriteString(w, "payload")
	}))
	defer bucket.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "plain") }))
	defer plain.Close()

	server := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "no device certificate", http.StatusUnauthorized)
			return
		}
		target := bucket.URL
		if r.URL.Path == "/downgrade" {
			target = plain.URL
		}
		http.Redirect(w, r, target+"/obj", http.StatusFound)
	}))
	server.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	server.StartTLS()
	defer server.Close()

	serverRoots := x509.NewCertPool()
	serverRoots.AddCert(server.Certificate())
	deviceCert := server.TLS.Certificates[0] // any certificate will do as the device's
	mtls := &tls.Config{RootCAs: serverRoots, Certificates: []tls.Certificate{deviceCert}}
	public := x509.NewCertPool()
	public.AddCert(bucket.Certificate())

	c, err := DownloadClient(server.URL, mtls, public)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(server.URL + "/targets/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "payload" {
		t.Fatalf("redirected download: %d %q", resp.StatusCode, body)
	}

	if _, err := c.Get(server.URL + "/downgrade"); !errors.Is(err, errDowngrade) {
		t.Fatalf("https→http redirect: err = %v, want refusal", err)
	}

	// The bucket's certificate must verify against the public roots: with
	// the server CA alone it does not.
	strict, _ := DownloadClient(server.URL, mtls, x509.NewCertPool())
	if _, err := strict.Get(server.URL + "/targets/x"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted bucket: err = %v, want a certificate error", err)
	}
}
