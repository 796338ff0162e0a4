package repo_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/repo"
)

// Status shows what signing would change: targets added and revoked,
// floors raised, signature counts against the threshold, and warnings.
func TestStatusDiff(t *testing.T) {
	f := committed(t)
	f.release(t, "old", custom("rootfs", 4, "board-a"))
	must(t, f.r.AddTarget("new", bytes.NewReader(payload("new")), custom("rootfs", 7, "board-a"), nil))
	must(t, f.r.Revoke("old"))
	f.r.Now = func() time.Time { return testNow.Add(80 * 24 * time.Hour) }
	st, err := f.r.Status()
	must(t, err)
	text := st.String()
	for _, want := range []string{
		"signed: root 1 ",
		"staged targets 3: 0 of 1 signatures — incomplete",
		"  version 2 → 3",
		"  + new: component rootfs, counter 7, version \"1.0\", hardware board-a, 15 B, sha256 ",
		"  - old (revoked)",
		"  floor rootfs on board-a: 0 → 5",
		"warning: targets expires 2026-05-30T09:00:00Z (in 10d)",
		"warning: timestamp expired",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}
	must(t, f.r.Sign("targets", f.targets))
	st, _ = f.r.Status()
	if !strings.Contains(st.String(), "1 of 1 signatures — ready to commit") {
		t.Errorf("complete role not reported:\n%s", st)
	}
}

func TestStatusFresh(t *testing.T) {
	f := newFixture(t, repo.InitOptions{Thresholds: map[string]int{"root": 3}})
	st, err := f.r.Status()
	must(t, err)
	text := st.String()
	for _, want := range []string{"signed: nothing committed yet", "staged root 1: 0 of 3 signatures", "threshold root: 0 → 3 of 1 keys"} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}
}

func TestInitRefusals(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		opts repo.InitOptions
	}{
		{"no channel", repo.InitOptions{}},
		{"unknown channel", repo.InitOptions{Channel: "beta"}},
		{"threshold zero", repo.InitOptions{Channel: trust.ChannelDev, Thresholds: map[string]int{"root": 0}}},
		{"online threshold", repo.InitOptions{Channel: trust.ChannelDev, Thresholds: map[string]int{"snapshot": 2}}},
		{"unknown role", repo.InitOptions{Channel: trust.ChannelDev, Thresholds: map[string]int{"mirror": 1}}},
		{"expiry too short", repo.InitOptions{Channel: trust.ChannelDev, Expiry: repo.Expiry{Timestamp: repo.Duration(time.Minute)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := repo.Init(dir, tt.opts)
			wantErr(t, err, trust.ErrInvalid)
		})
	}
	f := newFixture(t, repo.InitOptions{})
	_, err := repo.Init(f.dir, repo.InitOptions{Channel: trust.ChannelRelease})
	wantErr(t, err, repo.ErrDuplicate)
}

// A dev repository signs its channel into root and refuses release
// targets (CCDS UPC03).
func TestDevChannel(t *testing.T) {
	f := newFixture(t, repo.InitOptions{Channel: trust.ChannelDev})
	wantErr(t, f.r.AddTarget("x", failReader{t}, custom("rootfs", 1, "board-a"), nil), trust.ErrWrongChannel)
	must(t, f.r.Sign("root", f.root))
	must(t, f.r.Sign("targets", f.targets))
	f.commit(t)
	f.reopen(t)
	if f.r.Channel() != trust.ChannelDev {
		t.Fatalf("channel %q", f.r.Channel())
	}
}

func TestDurationFormat(t *testing.T) {
	for in, want := range map[string]string{"90d": "90d", "36h": "36h0m0s", "48h": "2d", "6h30m": "6h30m0s"} {
		d, err := repo.ParseDuration(in)
		must(t, err)
		if d.String() != want {
			t.Errorf("%s → %s, want %s", in, d, want)
		}
	}
	for _, bad := range []string{"", "d", "-1d", "1w", "99999999d"} {
		if _, err := repo.ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}
