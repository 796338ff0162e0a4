package storetest

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

// testReleases: import, lookup, filters, pagination, duplicates.
func testReleases(t *testing.T, e *env) {
	r := NewRelease("board-a/rootfs-1.2.img", 5, "board-a", "board-a2")
	r.Security, r.SBOMSHA256, r.AdvisorySHA256, r.Encrypted = true, strings.Repeat("ab", 32), strings.Repeat("cd", 32), true
	must(t, e.s.CreateRelease(e.ctx, r))
	equalTime(t, "imported at", r.ImportedAt, e.clock.Now())
	got, err := e.s.FindReleaseByName(e.ctx, r.Name)
	must(t, err)
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("found %+v, want %+v", got, r)
	}
	wantCode(t, e.s.CreateRelease(e.ctx, NewRelease(r.Name, 6, "board-a")), koshin.ECONFLICT)
	bad := NewRelease("x.img", 0, "board-a")
	wantCode(t, e.s.CreateRelease(e.ctx, bad), koshin.EINVALID)
	_, err = e.s.FindReleaseByName(e.ctx, "nope.img")
	wantCode(t, err, koshin.ENOTFOUND)

	must(t, e.s.CreateRelease(e.ctx, NewRelease("board-b/rootfs-1.2.img", 5, "board-b")))
	dev := NewRelease("board-b/rootfs-dev.img", 6, "board-b")
	dev.Channel = koshin.ChannelDev
	must(t, e.s.CreateRelease(e.ctx, dev))
	tests := []struct {
		f    koshin.ReleaseFilter
		want []string
	}{
		{koshin.ReleaseFilter{}, []string{"board-a/rootfs-1.2.img", "board-b/rootfs-1.2.img", "board-b/rootfs-dev.img"}},
		{koshin.ReleaseFilter{HardwareID: "board-a2"}, []string{"board-a/rootfs-1.2.img"}},
		{koshin.ReleaseFilter{Channel: koshin.ChannelDev}, []string{"board-b/rootfs-dev.img"}},
		{koshin.ReleaseFilter{Component: "kernel"}, nil},
		{koshin.ReleaseFilter{Limit: 1, After: "board-a/rootfs-1.2.img"}, []string{"board-b/rootfs-1.2.img"}},
	}
	for i, tt := range tests {
		list, err := e.s.FindReleases(e.ctx, tt.f)
		must(t, err)
		var names []string
		for _, r := range list {
			names = append(names, r.Name)
		}
		if !reflect.DeepEqual(names, tt.want) {
			t.Errorf("filter %d: %v, want %v", i, names, tt.want)
		}
	}

	revoked, err := e.s.RevokeRelease(e.ctx, dev.Name, e.clock.Now())
	must(t, err)
	if !revoked.Revoked || revoked.RevokedAt.IsZero() {
		t.Fatalf("revoked = %+v", revoked)
	}
	again, err := e.s.RevokeRelease(e.ctx, dev.Name, e.clock.Now().Add(time.Hour))
	must(t, err)
	equalTime(t, "revoked at", again.RevokedAt, revoked.RevokedAt)
	list, err := e.s.FindReleases(e.ctx, koshin.ReleaseFilter{HardwareID: "board-b"})
	must(t, err)
	if len(list) != 1 {
		t.Fatalf("revoked release listed by default: %d", len(list))
	}
	list, err = e.s.FindReleases(e.ctx, koshin.ReleaseFilter{HardwareID: "board-b", IncludeRevoked: true})
	must(t, err)
	if len(list) != 2 {
		t.Fatalf("IncludeRevoked listed %d", len(list))
	}
	_, err = e.s.RevokeRelease(e.ctx, "nope.img", e.clock.Now())
	wantCode(t, err, koshin.ENOTFOUND)
}

// testRevokeHaltsRollouts: revoking a release halts its rollouts, cancels
// what has not started, and keeps them from resuming or being created
// (CCDS UPC05).
func testRevokeHaltsRollouts(t *testing.T, e *env) {
	e.createRelease(t, "bad.img", "board-a")
	e.fleet(t, "D", "board-a", 4)
	r := e.startRollout(t, NewRollout("bad.img", koshin.Phase{Percent: 100}))
	as, err := e.s.AssignNext(e.ctx, r.ID, 0, 4, e.clock.Now())
	must(t, err)
	_, err = e.s.RecordEvent(e.ctx, &koshin.Event{DeviceID: as[0].DeviceID, EventID: "e1", Type: koshin.EventDownloading, ReleaseName: "bad.img"}, e.clock.Now())
	must(t, err)
	_, err = e.s.RevokeRelease(e.ctx, "bad.img", e.clock.Now())
	must(t, err)
	got, err := e.s.FindRolloutByID(e.ctx, r.ID)
	must(t, err)
	if got.State != koshin.RolloutHalted || got.HaltReason == "" {
		t.Fatalf("rollout after revoke = %s %q", got.State, got.HaltReason)
	}
	cancelled, err := e.s.FindAssignments(e.ctx, koshin.AssignmentFilter{RolloutID: r.ID, State: koshin.AssignmentCancelled})
	must(t, err)
	if len(cancelled) != 3 {
		t.Fatalf("cancelled %d, want the 3 not started", len(cancelled))
	}
	_, err = e.s.ResumeRollout(e.ctx, r.ID, e.clock.Now())
	wantCode(t, err, koshin.ECONFLICT)
	wantCode(t, e.s.CreateRollout(e.ctx, NewRollout("bad.img", koshin.Phase{Percent: 100})), koshin.ECONFLICT)
}
