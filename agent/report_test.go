package agent_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/agenttest"
	"github.com/koshin-ota/koshin/deviceapi"
)

// envelopeServer keeps every check-in envelope it passes on.
type envelopeServer struct {
	agent.Server
	got []deviceapi.CheckIn
}

func (s *envelopeServer) CheckIn(ctx context.Context, c deviceapi.CheckIn) (deviceapi.CheckInResponse, error) {
	s.got = append(s.got, c)
	return s.Server.CheckIn(ctx, c)
}

// The engine signs its report again only when the report changed; every
// check-in still carries a fresh nonce, outside the signed bytes.
func TestReportSignedOnlyWhenChanged(t *testing.T) {
	r := agenttest.NewRig(t, 3)
	r.Server.Assign("")
	settings := deviceapi.Settings{UpdatesEnabled: true, Automatic: true, Notifications: true}
	srv := &envelopeServer{}
	r.Tweak = func(c *agent.Config) {
		srv.Server = c.Server
		c.Server = srv
		c.CurrentSettings = func() deviceapi.Settings { return settings }
	}
	e := r.Boot()
	poll := func() deviceapi.CheckIn {
		t.Helper()
		if _, err := e.Poll(context.Background()); err != nil {
			t.Fatalf("poll: %v", err)
		}
		return srv.got[len(srv.got)-1]
	}
	first := poll()
	r.Clock.Advance(time.Hour)
	second := poll()
	if !bytes.Equal(first.Report, second.Report) || !bytes.Equal(first.Signature, second.Signature) {
		t.Fatal("an unchanged report was signed again")
	}
	if first.Nonce == second.Nonce || len(first.Nonce) < 16 {
		t.Fatalf("nonces %q and %q: want a fresh one per check-in", first.Nonce, second.Nonce)
	}
	settings.Automatic = false
	third := poll()
	if bytes.Equal(third.Report, second.Report) {
		t.Fatal("a changed report was not signed again")
	}
	if !ed25519.Verify(r.Key.Public().(ed25519.PublicKey), third.Report, third.Signature) {
		t.Fatal("the new report's signature does not verify")
	}
	if !bytes.Contains(third.Report, []byte(`"automatic":false`)) {
		t.Fatalf("report %s does not carry the new setting", third.Report)
	}
}
