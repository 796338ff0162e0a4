package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// apiFlags locate the management API for the commands that use it
// (koshin device, koshin rollout).
type apiFlags struct {
	server, caFile, tokenFile string
}

// Environment variables of the API commands. The token is never a flag
// value, so it does not show up in process listings or shell history.
const (
	envServer = "KOSHIN_SERVER"
	envToken  = "KOSHIN_TOKEN"
	envCA     = "KOSHIN_CA"
)

func addAPIFlags(c *cobra.Command, f *apiFlags) {
	fl := c.PersistentFlags()
	fl.StringVar(&f.server, "server", "", "management API `URL` ($"+envServer+", default https://127.0.0.1:8444)")
	fl.StringVar(&f.caFile, "ca", "", "server CA certificate `FILE` to trust ($"+envCA+"; DATA/pki/server-ca.crt on the server)")
	fl.StringVar(&f.tokenFile, "token-file", "", "read the API token from `FILE` instead of $"+envToken)
}

// apiClient calls the management API with an API token.
type apiClient struct {
	base, token string
	http        *http.Client
}

// maxAnswer bounds what the CLI reads from the server.
const maxAnswer = 16 << 20

func (m *Main) apiClient(f apiFlags) (*apiClient, error) {
	base := firstNonEmpty(f.server, m.Getenv(envServer), "https://127.0.0.1:8444")
	token, err := m.apiToken(f)
	if err != nil {
		return nil, err
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Time: m.Now}
	if ca := firstNonEmpty(f.caFile, m.Getenv(envCA)); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("server CA: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server CA %s holds no PEM certificate", ca)
		}
	}
	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}}
	return &apiClient{base: strings.TrimRight(base, "/"), token: token, http: hc}, nil
}

func (m *Main) apiToken(f apiFlags) (string, error) {
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
	if t := m.Getenv(envToken); t != "" {
		return t, nil
	}
	return "", usagef("no API token: set %s or use --token-file (create one with POST /api/v1/tokens)", envToken)
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// do sends in (JSON, or raw bytes with ctype) and decodes the answer into
// out (if not nil). Error answers become errors carrying the server's
// message.
func (c *apiClient) do(ctx context.Context, method, path string, in any, out any) error {
	var body io.Reader
	ctype := "application/json"
	switch v := in.(type) {
	case nil:
	case rawBody:
		body, ctype = bytes.NewReader(v.data), v.ctype
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var eb struct{ Error string }
		if json.Unmarshal(data, &eb) != nil || eb.Error == "" {
			eb.Error = http.StatusText(resp.StatusCode)
		}
		return fmt.Errorf("%s %s: %d: %s", method, path, resp.StatusCode, eb.Error)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	return json.Unmarshal(data, out)
}

// rawBody sends bytes as they are.
type rawBody struct {
	data  []byte
	ctype string
}

// printJSON writes v indented, for --json output.
func (m *Main) printJSON(v any) error {
	enc := json.NewEncoder(m.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
