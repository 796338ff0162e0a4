package control

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/koshin-ota/koshin/agent/bundle"
	"github.com/koshin-ota/koshin/deviceapi"
)

// Client calls the control API over its Unix socket (the koshin-agent CLI
// and local UIs).
type Client struct {
	Token string
	HTTP  *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path, token string) *Client {
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
		MaxIdleConns: 1,
	}
	return &Client{Token: token, HTTP: &http.Client{Transport: tr}}
}

// APIError is an error answer.
type APIError struct {
	Code       int
	Message    string
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("%s (try again in %s)", e.Message, e.RetryAfter)
	}
	return e.Message
}

// Status returns the device's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	return st, c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
}

// Approve approves the pending update (target "" for whichever is
// pending).
func (c *Client) Approve(ctx context.Context, target string) (Pending, error) {
	var p Pending
	return p, c.do(ctx, http.MethodPost, "/v1/update/approve", Decision{Target: target}, &p)
}

// Postpone postpones the pending update; d carries Until or For.
func (c *Client) Postpone(ctx context.Context, d Decision) (Pending, error) {
	var p Pending
	return p, c.do(ctx, http.MethodPost, "/v1/update/postpone", d, &p)
}

// Decline declines the pending update.
func (c *Client) Decline(ctx context.Context, target string) (Pending, error) {
	var p Pending
	return p, c.do(ctx, http.MethodPost, "/v1/update/decline", Decision{Target: target}, &p)
}

// Settings returns the update settings.
func (c *Client) Settings(ctx context.Context) (deviceapi.Settings, error) {
	var s deviceapi.Settings
	return s, c.do(ctx, http.MethodGet, "/v1/settings", nil, &s)
}

// UpdateSettings changes the settings p sets.
func (c *Client) UpdateSettings(ctx context.Context, p SettingsPatch) (deviceapi.Settings, error) {
	var s deviceapi.Settings
	return s, c.do(ctx, http.MethodPatch, "/v1/settings", p, &s)
}

// RestoreDefaults restores the secure default settings.
func (c *Client) RestoreDefaults(ctx context.Context) (deviceapi.Settings, error) {
	var s deviceapi.Settings
	return s, c.do(ctx, http.MethodPost, "/v1/settings/defaults", nil, &s)
}

// FactoryReset resets the device.
func (c *Client) FactoryReset(ctx context.Context) (ResetResult, error) {
	var res ResetResult
	return res, c.do(ctx, http.MethodPost, "/v1/reset", ResetRequest{Confirm: ResetConfirmation}, &res)
}

// ClearAlert clears the agent's alert (root only); note is reported to
// the server.
func (c *Client) ClearAlert(ctx context.Context, note string) (Status, error) {
	var st Status
	return st, c.do(ctx, http.MethodPost, "/v1/alert/clear", ClearAlertRequest{Note: note}, &st)
}

// InstallPath asks the agent to install the bundle at path (root only).
func (c *Client) InstallPath(ctx context.Context, path string) (bundle.Result, error) {
	var res bundle.Result
	return res, c.do(ctx, http.MethodPost, "/v1/install", InstallRequest{Path: path}, &res)
}

// InstallStream sends a bundle's bytes.
func (c *Client) InstallStream(ctx context.Context, r io.Reader) (bundle.Result, error) {
	var res bundle.Result
	return res, c.send(ctx, http.MethodPost, "/v1/install", "application/x-tar", r, &res)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	return c.send(ctx, method, path, "application/json", body, out)
}

func (c *Client) send(ctx context.Context, method, path, ctype string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://koshin-agent"+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		e := &APIError{Code: resp.StatusCode, Message: resp.Status}
		var eb ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
			e.Message = eb.Error
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return e
	}
	return json.Unmarshal(data, out)
}
