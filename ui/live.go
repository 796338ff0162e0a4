package ui

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"time"
)

// sseEvent is one server-sent event: Name is the id of the element whose
// content Data (an HTML fragment rendered by the same templates as the
// page) replaces.
type sseEvent struct {
	Name string
	Data []byte
}

// Live streams re-check the session this often, so that a sign-out or an
// expired session ends them; and send a comment this often so that proxies
// keep the connection.
const (
	liveAuthEvery  = 10 * time.Second
	liveHeartbeat  = 15 * time.Second
	liveRetryMilli = "3000"
)

var errTooManyStreams = &apiError{Status: http.StatusServiceUnavailable, Message: "Too many live views are open; reload the page later.", RetryAfter: 10 * time.Second}

// stream serves server-sent events: every LiveInterval it rebuilds the
// fragments and sends those that changed. It ends when the client goes
// away, the server shuts down or the session ends.
func (u *UI) stream(w http.ResponseWriter, r *http.Request, s *session, build func(context.Context) ([]sseEvent, error)) error {
	select {
	case u.streams <- struct{}{}:
	default:
		return errTooManyStreams
	}
	defer func() { <-u.streams }()
	ctx := r.Context()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte("retry: " + liveRetryMilli + "\n\n"))
	sent := map[string][32]byte{}
	tick := time.NewTicker(u.LiveInterval)
	defer tick.Stop()
	authAt, beatAt := time.Now(), time.Now()
	for {
		evs, err := build(ctx)
		if err != nil {
			if ctx.Err() == nil {
				u.Log.Error("ui: live update failed", "path", r.URL.Path, "err", err)
			}
			return nil
		}
		wrote := false
		for _, ev := range evs {
			sum := sha256.Sum256(ev.Data)
			if sent[ev.Name] == sum {
				continue
			}
			sent[ev.Name] = sum
			writeEvent(w, ev)
			wrote = true
		}
		if !wrote && time.Since(beatAt) > liveHeartbeat {
			w.Write([]byte(": ping\n\n"))
			wrote = true
		}
		if wrote {
			beatAt = time.Now()
			if err := rc.Flush(); err != nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-u.done:
			return nil
		case <-tick.C:
		}
		if time.Since(authAt) > liveAuthEvery {
			authAt = time.Now()
			if _, err := u.session(r); err != nil {
				var ae *apiError
				if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
					writeEvent(w, sseEvent{Name: "signed-out"})
					rc.Flush()
					return nil
				}
			}
		}
	}
}

// writeEvent writes one event; each line of the fragment becomes a data
// line (the browser joins them with newlines).
func writeEvent(w http.ResponseWriter, ev sseEvent) {
	var b bytes.Buffer
	b.WriteString("event: " + ev.Name + "\n")
	for _, line := range bytes.Split(ev.Data, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(bytes.TrimSuffix(line, []byte("\r")))
		b.WriteString("\n")
	}
	b.WriteString("\n")
	w.Write(b.Bytes())
}

// signedOutStream answers a live request without a session: an event
// stream that tells the page to reload (which leads to the sign-in page),
// rather than an error the browser would log and retry.
func signedOutStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	writeEvent(w, sseEvent{Name: "signed-out"})
}
