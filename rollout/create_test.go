package rollout_test

import (
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

// TestCreatePlan: Create records the seed, previews a stratified plan over
// the eligible devices only, and Start plans the same split.
func TestCreatePlan(t *testing.T) {
	f := newFixture(t, 100)
	for i := 100; i < 110; i++ {
		f.mustDevice(i, false) // updates switched off: not eligible (CCDS UPE05)
	}
	s := spec()
	s.Selector = koshin.Selector{HardwareIDs: []string{"board-a"}}
	s.State, s.Phase, s.CreatedBy = koshin.RolloutCompleted, 2, "operator:mallory" // ignored
	r, plan, err := f.svc.Create(f.ctx, operator, s)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != koshin.RolloutDraft || r.Phase != 0 || r.CreatedBy != operator || r.Seed != 42 || plan.Seed != 42 {
		t.Fatalf("created %+v with plan seed %d", r, plan.Seed)
	}
	if plan.Eligible != 75 || plan.UpdatesDisabled != 8 {
		t.Fatalf("plan: %d eligible, %d with updates off; want 75 and 8", plan.Eligible, plan.UpdatesDisabled)
	}
	wantPhases := []map[string]int{
		{"board-a|region=eu": 5, "board-a|region=us": 3}, // 8 = 10% of 75, split 50:25
		nil, nil,
	}
	total := 0
	for i, p := range plan.Phases {
		total += p.Devices
		if w := wantPhases[i]; w != nil && !equalCounts(p.Strata, w) {
			t.Errorf("phase %d strata %v, want %v", i+1, p.Strata, w)
		}
	}
	if total != 75 {
		t.Fatalf("plan covers %d devices, want 75", total)
	}
	if _, err := f.svc.Start(f.ctx, operator, r.ID); err != nil {
		t.Fatal(err)
	}
	st := f.stats(r.ID, 1)
	if st.Members != plan.Phases[1].Devices {
		t.Fatalf("store planned %d devices for phase 2, preview %d: devices with updates off must be left out by both", st.Members, plan.Phases[1].Devices)
	}
}

// TestPreviewMatchesStart: with an unchanged fleet, the plan Create
// previews is the plan Start makes, phase by phase.
func TestPreviewMatchesStart(t *testing.T) {
	f := newFixture(t, 100)
	s := spec()
	s.Phases = []koshin.Phase{{Percent: 1}, {Percent: 10}, {Percent: 50}, {Percent: 100}}
	r, plan, err := f.svc.Create(f.ctx, operator, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Start(f.ctx, operator, r.ID); err != nil {
		t.Fatal(err)
	}
	want := []int{1, 9, 40, 50}
	for i, p := range plan.Phases {
		if st := f.stats(r.ID, i); st.Members != p.Devices || p.Devices != want[i] {
			t.Errorf("phase %d: store planned %d, preview %d, want %d", i+1, st.Members, p.Devices, want[i])
		}
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestCreateRefusals: bad specs, unknown or revoked releases and
// selectors matching nobody change nothing and are audited as failed.
func TestCreateRefusals(t *testing.T) {
	f := newFixture(t, 10)
	if _, err := f.db.RevokeRelease(f.ctx, releaseName, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	revoked := spec()
	unknown := spec()
	unknown.ReleaseName = "board/fw-9.img"
	nobody := spec()
	nobody.ReleaseName = releaseName
	nobody.Selector = koshin.Selector{Groups: []string{"plant-9"}}
	noThreshold := spec()
	noThreshold.Threshold = koshin.Threshold{}
	tests := []struct {
		name string
		spec koshin.Rollout
		code string
	}{
		{"revoked release", revoked, koshin.ECONFLICT},
		{"unknown release", unknown, koshin.ENOTFOUND},
		{"no threshold", noThreshold, koshin.EINVALID},
	}
	for _, tt := range tests {
		_, _, err := f.svc.Create(f.ctx, operator, tt.spec)
		wantCode(t, err, tt.code)
	}
	if got := f.auditCount("rollout.create"); got != len(tests) {
		t.Fatalf("%d create audit entries, want %d", got, len(tests))
	}
	es, err := f.db.FindAuditEntries(f.ctx, koshin.AuditFilter{Action: "rollout.create"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Result != koshin.AuditFailed || e.Principal != operator {
			t.Fatalf("audit entry %+v, want a failure by %s", e, operator)
		}
	}
	rs, _ := f.db.FindRollouts(f.ctx, koshin.RolloutFilter{})
	if len(rs) != 0 {
		t.Fatalf("%d rollouts stored by refused creates", len(rs))
	}

	g := newFixture(t, 10)
	_, _, err = g.svc.Create(g.ctx, operator, nobody)
	wantCode(t, err, koshin.EINVALID)
}

// TestPauseResume: a paused rollout offers nothing new and assigns
// nothing, devices already offered keep going, and resuming continues.
func TestPauseResume(t *testing.T) {
	f := newFixture(t, 100)
	id := f.start(spec())
	f.tick()
	as := f.assignments(id, 0, "")
	f.checkIn(as[0].DeviceID)
	if _, err := f.svc.Pause(f.ctx, operator, id); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Pause(f.ctx, operator, id)
	wantCode(t, err, koshin.ECONFLICT)
	if o := f.checkIn(as[0].DeviceID); o == nil {
		t.Fatal("offered device lost its offer on pause")
	}
	for _, a := range as[1:] {
		if o := f.checkIn(a.DeviceID); o != nil {
			t.Fatalf("paused rollout offered %+v", o)
		}
	}
	f.install(as[:1], success)
	if _, err := f.svc.Resume(f.ctx, operator, id, nil); err != nil {
		t.Fatal(err)
	}
	if n := f.install(as[1:], success); n != len(as)-1 {
		t.Fatalf("%d offered after resume, want %d", n, len(as)-1)
	}
	for _, action := range []string{"rollout.pause", "rollout.resume"} {
		if f.auditCount(action) == 0 {
			t.Errorf("no %s audit entry", action)
		}
	}
}

// TestRevokedReleaseNotOffered: once a release is revoked no device is
// told to fetch it, not even one that was downloading (CCDS UPC05).
func TestRevokedReleaseNotOffered(t *testing.T) {
	f := newFixture(t, 20)
	id := f.start(spec())
	f.tick()
	a := f.assignments(id, 0, "")[0]
	f.checkIn(a.DeviceID)
	f.report(a.DeviceID, koshin.EventDownloading)
	if _, err := f.db.RevokeRelease(f.ctx, releaseName, f.clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if o := f.checkIn(a.DeviceID); o != nil {
		t.Fatalf("revoked release offered: %+v", o)
	}
}
