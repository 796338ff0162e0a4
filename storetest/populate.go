package storetest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

// Populate fills s through its own methods with a small installation that
// touches every table and the awkward values in them: devices with tags,
// inventory reports, a decommissioned device, used and unused
// pre-authorisations and enrollment tokens, a revoked release, rollouts in
// several states with their plans, assignments in success, failure and
// cancellation, events, operators with a second factor, a pending offer
// and a lockout, API tokens, audit entries and settings. Data moves
// (koshin migrate-store, backups) are tested against it. clock is the
// store's record-keeping clock; Populate advances it.
func Populate(t *testing.T, s koshin.Store, clock *Clock) {
	t.Helper()
	e := &env{s: s, clock: clock, ctx: context.Background()}
	devs := e.fleet(t, "POP", "board-a", 12, func(i int, d *koshin.Device) {
		d.Group = fmt.Sprintf("plant-%d", i%3)
		d.Tags = []string{"region=eu", fmt.Sprintf("line=%d", i%4)}
	})
	e.fleet(t, "POPB", "board-b", 2)
	e.populateDevices(t, devs)
	e.populateEnrollment(t)
	e.populateRollouts(t, devs)
	e.populateOperators(t)
	for i := range 5 {
		e.audit(t, "operator:alice", "device.update", fmt.Sprintf("device/%d", i))
	}
	for _, kv := range [][2]string{{koshin.SettingDeviceCA, "aa:bb"}, {koshin.SettingDirectorRoot, "cc"}} {
		_, err := s.ClaimSetting(e.ctx, kv[0], kv[1])
		must(t, err)
	}
}

func (e *env) populateDevices(t *testing.T, devs []*koshin.Device) {
	for i, d := range devs[:4] {
		inv := d.Inventory
		inv.Components = []koshin.Component{{Name: "rootfs", Version: fmt.Sprintf("1.%d", i), ReleaseCounter: 1}}
		_, err := e.s.RecordDeviceReport(e.ctx, d.ID, inv, e.clock.Now())
		must(t, err)
		must(t, e.s.TouchDevice(e.ctx, d.ID, e.clock.Now()))
	}
	poll := 90 * time.Minute
	_, err := e.s.UpdateDevice(e.ctx, devs[5].ID, koshin.DeviceUpdate{PollInterval: &poll})
	must(t, err)
	gone := e.createDevice(t, "POP-GONE", "board-a")
	_, err = e.s.DecommissionDevice(e.ctx, gone.ID, e.clock.Now())
	must(t, err)
	e.clock.Advance(time.Minute)
}

func (e *env) populateEnrollment(t *testing.T) {
	var pre []*koshin.PreAuthorization
	for i := range 3 {
		pre = append(pre, &koshin.PreAuthorization{Serial: fmt.Sprintf("PRE-%d", i), HardwareID: "board-a", PublicKey: NewKey(t),
			Group: "factory", Tags: []string{"batch=7"}})
	}
	must(t, e.s.CreatePreAuthorizations(e.ctx, pre))
	d := NewDevice(t, "PRE-0", "board-a")
	d.ID, d.PublicKey = koshin.DeviceID(pre[0].PublicKey), pre[0].PublicKey
	_, err := e.s.EnrollDevice(e.ctx, koshin.Enrollment{Device: d}, e.clock.Now())
	must(t, err)

	for i := range 2 {
		h := sha256.Sum256(fmt.Appendf(nil, "token-%d-%d", i, keySeq.Add(1)))
		tok := &koshin.EnrollmentToken{Hash: h[:], Description: "line 3", Group: "lab", Tags: []string{"t"},
			CreatedBy: "alice", ExpiresAt: e.clock.Now().Add(24 * time.Hour)}
		must(t, e.s.CreateEnrollmentToken(e.ctx, tok))
		if i == 0 {
			_, err := e.s.EnrollDevice(e.ctx, koshin.Enrollment{Device: NewDevice(t, "TOK-0", "board-a"), TokenHash: h[:]}, e.clock.Now())
			must(t, err)
		}
	}
	e.clock.Advance(time.Minute)
}

// populateRollouts: one running rollout (phase 1 done with a success and a
// failure each way, phase 2 partly assigned), one halted with cancelled
// assignments, one draft, and a revoked release.
func (e *env) populateRollouts(t *testing.T, devs []*koshin.Device) {
	e.createRelease(t, "pop-2.img", "board-a")
	old := NewRelease("pop-1.img", 1, "board-a", "board-b")
	old.Security, old.Encrypted = true, true
	must(t, e.s.CreateRelease(e.ctx, old))
	_, err := e.s.RevokeRelease(e.ctx, "pop-1.img", e.clock.Now())
	must(t, err)

	r := NewRollout("pop-2.img", koshin.Phase{Count: 4}, koshin.Phase{Percent: 100})
	r.Selector = koshin.Selector{HardwareIDs: []string{"board-a"}}
	r.Threshold = koshin.Threshold{MaxFailures: 5}
	r.RatePerMinute = 3
	r = e.startRollout(t, r)
	as, err := e.s.AssignNext(e.ctx, r.ID, 0, 4, e.clock.Now())
	must(t, err)
	for i, a := range as {
		switch i {
		case 0, 1:
			e.report(t, a.DeviceID, "pop-2.img", success...)
		case 2:
			e.report(t, a.DeviceID, "pop-2.img", koshin.EventDownloading, koshin.EventInstalling, koshin.EventRolledBack)
		}
	}
	ev := &koshin.Event{DeviceID: devs[0].ID, EventID: "with-detail", Type: koshin.EventFailed, Reason: "health-check",
		Detail: "service \"app\" did not start\n", DeviceTime: e.clock.Now().Add(-time.Second)}
	_, err = e.s.RecordEvent(e.ctx, ev, e.clock.Now())
	must(t, err)
	e.clock.Advance(time.Hour + time.Minute) // the fourth device falls silent
	_, err = e.s.ExpireSilentAssignments(e.ctx, e.clock.Now())
	must(t, err)
	_, err = e.s.AdvanceRollout(e.ctx, r.ID, 0, e.clock.Now())
	must(t, err)
	_, err = e.s.AssignNext(e.ctx, r.ID, 1, 3, e.clock.Now())
	must(t, err)

	halted := NewRollout("pop-2.img", koshin.Phase{Percent: 100})
	halted.Selector = koshin.Selector{HardwareIDs: []string{"board-b"}}
	halted = e.startRollout(t, halted)
	_, err = e.s.AssignNext(e.ctx, halted.ID, 0, 2, e.clock.Now())
	must(t, err)
	_, _, err = e.s.HaltRollout(e.ctx, halted.ID, "phase 1: operator said so", e.clock.Now())
	must(t, err)

	draft := NewRollout("pop-2.img", koshin.Phase{Percent: 10}, koshin.Phase{Percent: 100})
	draft.Window = &koshin.MaintenanceWindow{Cron: "0 2 * * *", Duration: 2 * time.Hour, TimeZone: "Europe/Berlin"}
	draft.StratifyTags = []string{"region"}
	must(t, e.s.CreateRollout(e.ctx, draft))
	e.clock.Advance(time.Minute)
}

func (e *env) populateOperators(t *testing.T) {
	e.createOperator(t, "alice", koshin.RoleAdmin)
	e.createOperator(t, "bob", koshin.RoleOperator)
	secret := []byte("0123456789abcdefghij")
	_, err := e.s.UpdateOperator(e.ctx, "alice", koshin.OperatorUpdate{TOTPSecret: &secret})
	must(t, err)
	must(t, e.s.UseTOTPStep(e.ctx, "alice", 59_000_000))
	must(t, e.s.OfferTOTP(e.ctx, "bob", []byte("abcdefghij0123456789"), e.clock.Now().Add(10*time.Minute)))
	for range 6 {
		_, err := e.s.RecordLoginFailure(e.ctx, "bob", koshin.DefaultLockoutPolicy, e.clock.Now())
		must(t, err)
	}
	_, err = e.s.RecordLoginSuccess(e.ctx, "alice", e.clock.Now())
	must(t, err)
	for i, role := range []koshin.Role{koshin.RoleAdmin, koshin.RoleViewer} {
		h := sha256.Sum256(fmt.Appendf(nil, "api-token-%d-%d", i, keySeq.Add(1)))
		must(t, e.s.CreateAPIToken(e.ctx, &koshin.APIToken{Operator: "alice", Name: fmt.Sprintf("ci-%d", i), Role: role, Hash: h[:],
			ExpiresAt: e.clock.Now().Add(30 * 24 * time.Hour)}))
	}
}
