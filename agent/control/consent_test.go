package control_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/agent/control"
	"github.com/koshin-ota/koshin/deviceapi"
)

// In a consent rollout the update waits for the user; approving it
// installs it at the next check-in.
func TestConsentApproveInstalls(t *testing.T) {
	f := newFixture(t, 1)
	f.srv.setMode(deviceapi.ModeConsent)
	if f.poll() {
		t.Fatal("installed without the user's consent")
	}
	st := f.status()
	if st.Pending == nil || st.Pending.Target != f.r.NewName || st.Pending.Mode != deviceapi.ModeConsent || st.Pending.Version != "2.0" {
		t.Fatalf("pending %+v, want %s waiting for consent", st.Pending, f.r.NewName)
	}
	if f.fetch.Served() != 0 {
		t.Fatalf("downloaded %d bytes before consent", f.fetch.Served())
	}
	ctx := context.Background()
	if _, err := f.client().Approve(ctx, "some-other-release.img"); err == nil {
		t.Fatal("approved a release that is not the pending one")
	}
	p, err := f.client().Approve(ctx, f.r.NewName)
	if err != nil || !p.Approved {
		t.Fatalf("approve: %+v, %v", p, err)
	}
	if f.wakes != 1 {
		t.Fatalf("approval woke the poll loop %d times, want 1", f.wakes)
	}
	if !f.poll() {
		t.Fatal("approved update not installed")
	}
	if env := f.r.Env(); env.Slot != "B" || !env.UpgradeAvailable {
		t.Fatalf("bootloader %+v, want a trial of B", env)
	}
	if st := f.status(); st.Pending != nil {
		t.Fatalf("still pending after install: %+v", st.Pending)
	}
}

// A postponed update is not installed before the chosen time, and is
// installed at the first check-in after it without asking again.
func TestPostponeDelaysInstall(t *testing.T) {
	f := newFixture(t, 2)
	f.srv.setMode(deviceapi.ModeConsent)
	f.poll()
	ctx := context.Background()
	if _, err := f.client().Postpone(ctx, control.Decision{For: "1000h"}); err == nil {
		t.Fatal("postponed beyond the maximum")
	}
	if _, err := f.client().Postpone(ctx, control.Decision{For: "-1h"}); err == nil {
		t.Fatal("postponed into the past")
	}
	// Within the signed metadata's one-day validity, which the test's
	// repositories do not renew.
	p, err := f.client().Postpone(ctx, control.Decision{Target: f.r.NewName, For: "2h"})
	if err != nil || p.PostponedUntil == nil || !p.PostponedUntil.Equal(f.r.Clock.Now().Add(2*time.Hour)) {
		t.Fatalf("postpone: %+v, %v", p, err)
	}
	f.r.Clock.Advance(time.Hour + 59*time.Minute)
	if f.poll() || f.fetch.Served() != 0 {
		t.Fatal("installed before the postponement ended")
	}
	if f.count(deviceapi.EventPostponed) != 1 {
		t.Fatalf("server got %v, want one postponed report", f.events())
	}
	f.r.Clock.Advance(2 * time.Minute)
	if !f.poll() {
		t.Fatal("not installed after the postponement ended")
	}
}

// A declined update is reported as declined and not installed, however
// often the server offers it.
func TestDeclineReported(t *testing.T) {
	f := newFixture(t, 3)
	f.srv.setMode(deviceapi.ModeConsent)
	f.poll()
	p, err := f.client().Decline(context.Background(), "")
	if err != nil || p.Target != f.r.NewName {
		t.Fatalf("decline: %+v, %v", p, err)
	}
	for range 3 {
		if f.poll() {
			t.Fatal("declined update installed")
		}
	}
	evs := f.events()
	var declined []deviceapi.Event
	for _, e := range evs {
		if e.Type == deviceapi.EventDeclined {
			declined = append(declined, e)
		}
	}
	if len(declined) != 1 || declined[0].Target != f.r.NewName {
		t.Fatalf("server got %v, want one declined report for %s", evs, f.r.NewName)
	}
	if st := f.status(); st.Pending != nil || f.fetch.Served() != 0 {
		t.Fatalf("pending %+v, served %d after decline", st.Pending, f.fetch.Served())
	}
}

// A forced rollout installs a release the user declined (CCDS UPD11).
func TestForcedIgnoresDecline(t *testing.T) {
	f := newFixture(t, 4)
	f.srv.setMode(deviceapi.ModeConsent)
	f.poll()
	if _, err := f.client().Decline(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	f.poll()
	f.srv.setMode(deviceapi.ModeForced)
	if !f.poll() {
		t.Fatal("forced update not installed after the user declined it")
	}
}

// Manual mode (CCDS UPE06) makes even an automatic rollout wait for the
// user.
func TestManualModeWaits(t *testing.T) {
	f := newFixture(t, 5)
	off := false
	if _, err := f.client().UpdateSettings(context.Background(), control.SettingsPatch{Automatic: &off}); err != nil {
		t.Fatal(err)
	}
	if f.poll() {
		t.Fatal("installed in manual mode without approval")
	}
	if st := f.status(); st.Pending == nil || st.Pending.Mode != deviceapi.ModeAutomatic {
		t.Fatalf("pending %+v", st.Pending)
	}
	if _, err := f.client().Approve(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	if !f.poll() {
		t.Fatal("approved update not installed")
	}
}

// With updates switched off (CCDS UPE05) nothing is downloaded, even in a
// forced rollout; the server sees the setting in the next report.
func TestUpdatesOffMeansNoDownload(t *testing.T) {
	f := newFixture(t, 6)
	off := false
	s, err := f.client().UpdateSettings(context.Background(), control.SettingsPatch{UpdatesEnabled: &off})
	if err != nil || s.UpdatesEnabled {
		t.Fatalf("settings %+v, %v", s, err)
	}
	for _, mode := range []deviceapi.Mode{deviceapi.ModeAutomatic, deviceapi.ModeForced} {
		f.srv.setMode(mode)
		if f.poll() {
			t.Fatalf("%s update installed with updates off", mode)
		}
	}
	if n := f.fetch.Served(); n != 0 {
		t.Fatalf("downloaded %d payload bytes with updates off", n)
	}
	reps := f.r.Server.Reports()
	if last := reps[len(reps)-1]; last.Settings.UpdatesEnabled {
		t.Fatalf("report settings %+v, want updates off", last.Settings)
	}
	if f.count(deviceapi.EventSettingsChang) != 1 {
		t.Fatalf("server got %v, want a settings-changed report", f.events())
	}
	if st := f.status(); st.Pending == nil || st.Pending.Blocked != "updates-off" {
		t.Fatalf("pending %+v, want the offer shown as blocked by the setting", st.Pending)
	}
	if _, err := f.client().InstallStream(context.Background(), nil); err == nil {
		t.Fatal("offline install accepted with updates off")
	} else {
		wantCode(t, err, http.StatusConflict)
	}
}
