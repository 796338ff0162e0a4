package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// apiError is a refusal from the management API: its status and its
// message, which the API keeps safe to show.
type apiError struct {
	Status     int
	Message    string
	RetryAfter time.Duration
}

func (e *apiError) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Message) }

// call makes a management API request in-process on behalf of the
// browser's request r: the same remote address (for the API's per-source
// limits), the given bearer token and a JSON body. A 2xx answer is decoded
// into out (if not nil); anything else is an *apiError.
func (u *UI) call(r *http.Request, token, method, path string, body, out any) error {
	var rd io.Reader = http.NoBody
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, path, rd)
	if err != nil {
		return err
	}
	req.RemoteAddr, req.Host, req.TLS = r.RemoteAddr, r.Host, r.TLS
	req.Header.Set("User-Agent", "koshin-ui")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	u.API.ServeHTTP(rec, req)
	if rec.status < 200 || rec.status > 299 {
		e := &apiError{Status: rec.status}
		var eb struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(rec.body.Bytes(), &eb) == nil && eb.Error != "" {
			e.Message = eb.Error
		} else {
			e.Message = http.StatusText(rec.status)
		}
		if s, err := strconv.Atoi(rec.header.Get("Retry-After")); err == nil {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return e
	}
	if out != nil && rec.body.Len() > 0 {
		return json.Unmarshal(rec.body.Bytes(), out)
	}
	return nil
}

// recorder captures an in-process answer.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}
