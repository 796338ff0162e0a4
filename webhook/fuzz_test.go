package webhook_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/webhook"
)

// FuzzVerify feeds arbitrary header values and bodies to Verify: it must
// never panic, and it may accept a request only if the request carries the
// genuine signature of its timestamp and body.
func FuzzVerify(f *testing.F) {
	_, body := sample()
	ts := strconv.FormatInt(t0.Unix(), 10)
	good := webhook.Sign(secret, t0.Unix(), body)
	f.Add(ts, good, body)
	f.Add(ts, "v2=00, "+good, body)
	f.Add(ts, good+","+good, []byte("{}"))
	f.Add("0"+ts, "v1=", body)
	f.Add("99999999999999999999", "v1=zz", []byte{})
	f.Add("", ",,,=", []byte("x"))
	f.Fuzz(func(t *testing.T, tsHeader, sigHeader string, body []byte) {
		h := http.Header{}
		h.Set(webhook.TimestampHeader, tsHeader)
		h.Set(webhook.SignatureHeader, sigHeader)
		err := webhook.Verify(secret, h, body, t0, time.Hour)
		if err != nil {
			return
		}
		n, perr := strconv.ParseInt(tsHeader, 10, 64)
		if perr != nil {
			t.Fatalf("accepted timestamp %q", tsHeader)
		}
		if !containsSignature(sigHeader, webhook.Sign(secret, n, body)) {
			t.Fatalf("accepted %q without the genuine signature", sigHeader)
		}
	})
}

// containsSignature reports whether header lists want, ignoring the case
// of hex digits and spaces around entries.
func containsSignature(header, want string) bool {
	for e := range strings.SplitSeq(header, ",") {
		if strings.EqualFold(strings.TrimSpace(e), want) {
			return true
		}
	}
	return false
}
