package control_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/control"
	"github.com/koshin-ota/koshin/deviceapi"
)

func ptr[T any](v T) *T { return &v }

// A new device has the secure defaults (EN 303 645 5.3-6); changes
// persist across restarts; "restore defaults" brings them back (CCDS
// STS06) and forgets declines.
func TestSettingsPersistAndDefaults(t *testing.T) {
	f := newFixture(t, 20)
	ctx := context.Background()
	c := f.client()
	s, err := c.Settings(ctx)
	if err != nil || s != control.DefaultSettings() || !s.UpdatesEnabled || !s.Automatic || !s.Notifications {
		t.Fatalf("new device settings %+v, %v; want on, automatic, notifications on", s, err)
	}
	want := deviceapi.Settings{UpdatesEnabled: true, Automatic: false, Notifications: false, NotifyTarget: "display"}
	s, err = c.UpdateSettings(ctx, control.SettingsPatch{Automatic: ptr(false), Notifications: ptr(false), NotifyTarget: ptr("display")})
	if err != nil || s != want {
		t.Fatalf("patched %+v, %v; want %+v", s, err, want)
	}
	reopened, err := control.OpenSettings(agent.DirFS(f.dir))
	if err != nil || reopened.Get() != want {
		t.Fatalf("after restart %+v, %v; want %+v", reopened.Get(), err, want)
	}
	if _, err := c.UpdateSettings(ctx, control.SettingsPatch{NotifyTarget: ptr("bad\x00target")}); err == nil {
		t.Fatal("accepted a control character in notify_target")
	}
	if _, err := c.UpdateSettings(ctx, control.SettingsPatch{NotifyTarget: ptr(strings.Repeat("x", 300))}); err == nil {
		t.Fatal("accepted an overlong notify_target")
	}

	f.srv.setMode(deviceapi.ModeConsent)
	f.poll()
	if _, err := c.Decline(ctx, ""); err != nil {
		t.Fatal(err)
	}
	s, err = c.RestoreDefaults(ctx)
	if err != nil || s != control.DefaultSettings() {
		t.Fatalf("restored %+v, %v", s, err)
	}
	f.srv.setMode(deviceapi.ModeAutomatic)
	if !f.poll() {
		t.Fatal("after restoring defaults the formerly declined update still does not install")
	}
	if n := f.count(deviceapi.EventSettingsChang); n != 2 {
		t.Fatalf("server got %v, want two settings-changed reports", f.events())
	}
}

func TestDamagedSettingsFallBackToDefaults(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "settings.json"), []byte(`{"updates_enabled": fal`), 0o600)
	s, err := control.OpenSettings(agent.DirFS(dir))
	if err == nil {
		t.Fatal("damage not reported")
	}
	if s.Get() != control.DefaultSettings() {
		t.Fatalf("damaged file gave %+v, want the secure defaults", s.Get())
	}
}
