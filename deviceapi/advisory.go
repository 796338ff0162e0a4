package deviceapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Advisory fetches the CSAF advisory of a release from
// GET /device/v1/advisories/{release}, so the device can tell its user
// why an update matters (EN 303 645 5.3-11). The bytes come from the
// server and prove nothing: check them against the advisory_sha256 that
// the release's verified target signs (advisory.VerifyCSAF) before showing
// anything from them. Temporary failures are retried like every call; a
// release without an advisory is a 404 StatusError.
func (c *Client) Advisory(ctx context.Context, release string) ([]byte, error) {
	if release == "" || len(release) > maxText {
		return nil, fmt.Errorf("device api: release name of %d bytes", len(release))
	}
	u := c.BaseURL + PathAdvisories + (&url.URL{Path: release}).EscapedPath()
	attempts := c.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	for i := 0; ; i++ {
		b, err := c.get(ctx, u)
		if err == nil || i+1 >= attempts || !retryable(err) || ctx.Err() != nil {
			return b, err
		}
		if serr := c.sleep(ctx, c.delay(i, err)); serr != nil {
			return nil, err
		}
	}
}

// get reads one answer of at most MaxResponseBody bytes.
func (c *Client) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxResponseBody {
		return nil, &protocolError{fmt.Sprintf("answer larger than %d bytes", MaxResponseBody)}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp, data)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return nil, &protocolError{"advisory is not JSON"}
	}
	return data, nil
}
