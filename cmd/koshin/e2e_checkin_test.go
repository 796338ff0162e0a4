package main

import (
	"context"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/deviceapi"
)

// A device sends the same signed report while nothing changes; the server
// verifies and stores it once, then only marks the device seen (coalesced
// into the store once a second). The same report with any other signature
// is verified, and refused.
func TestCheckInVerifiesEachReportOnce(t *testing.T) {
	e := newE2E(t, e2eOpts{})
	admin := e.adminToken()
	d := e.enrollWithToken(admin, "SN-1")
	ci, err := deviceapi.SignReport(d.key, d.report())
	mustDo(t, err)
	send := func(ci deviceapi.CheckIn) error {
		ci.Nonce = d.freshNonce()
		_, err := d.client.CheckIn(context.Background(), ci)
		return err
	}
	mustDo(t, send(ci))
	e.clock.Advance(time.Minute)
	again := e.clock.Now()
	mustDo(t, send(ci))

	forged := ci
	forged.Signature = append([]byte(nil), ci.Signature...)
	forged.Signature[len(forged.Signature)-1] ^= 1
	if err := send(forged); statusOf(err) != 400 {
		t.Fatalf("known report with a changed signature: %v, want 400", err)
	}

	// The repeated check-in's time reaches the store within a flush.
	deadline := time.Now().Add(10 * time.Second)
	for {
		dev, err := e.srv.Store.FindDeviceByID(context.Background(), d.id)
		mustDo(t, err)
		if dev.LastSeenAt.Equal(again) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("last seen %s, want the repeated check-in's %s", dev.LastSeenAt, again)
		}
		time.Sleep(50 * time.Millisecond)
	}
	reports, err := e.srv.Store.FindDeviceReports(context.Background(), d.id, koshin.SeqPage{Limit: 10})
	mustDo(t, err)
	if len(reports) != 1 {
		t.Fatalf("%d reports in the history, want the one distinct report", len(reports))
	}
}
