package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/verify"
)

// TestEndToEndRollout is issue 3's end-to-end check: the real server on
// 127.0.0.1:0 with SQLite in a temporary directory; ten in-process devices
// enrolled by factory pre-authorisation (CCDS HLC05) and by one-time
// tokens (HLC04); a three-phase rollout whose devices report success,
// failure and silence. It shows the phase advance, the halt at the
// failure threshold with the silent device counted as failed, that
// cancelled and unreached devices never receive an assignment, that the
// director metadata is signed per device and echoes its nonce (verified
// with the device-side verifier, trust/verify), recovery from the halt,
// and that every state change is in the hash-chained audit log (CCDS
// STS14).
func TestEndToEndRollout(t *testing.T) {
	e := newE2E(t, e2eOpts{}, e2eRelease{name: "fw-2.0", hw: []string{"board-a"}, counter: 2})
	admin := e.adminToken()

	var imported struct{ Imported []string }
	e.must(e.call("POST", "/api/v1/releases/import", admin, nil), 200).decode(t, &imported)
	if !slices.Equal(imported.Imported, []string{"fw-2.0"}) {
		t.Fatalf("imported %v", imported.Imported)
	}
	devs := e.enrollFleet(admin, 10)

	for _, d := range devs {
		if resp := d.mustCheckIn(); resp.Director != nil || resp.PollInterval != 3600 || resp.PollJitter != 600 {
			t.Fatalf("check-in before any rollout: %+v", resp)
		}
	}

	id := e.createRollout(admin, map[string]any{
		"name": "fw-2.0 to the fleet", "release": "fw-2.0", "selector": map[string]any{"all": true},
		"phases":          []map[string]any{{"count": 2}, {"count": 6}, {"percent": 100}},
		"threshold":       map[string]any{"max_failures": 2},
		"silence_timeout": int64(time.Hour), "mode": "automatic",
	})
	e.must(e.call("POST", fmt.Sprintf("/api/v1/rollouts/%d/start", id), admin, nil), 200)
	e.tick()

	byID := map[string]*device{}
	for _, d := range devs {
		byID[d.id] = d
	}
	phase0 := e.phaseDevices(admin, id, 0, byID)
	if len(phase0) != 2 {
		t.Fatalf("phase 1 has %d devices, want 2", len(phase0))
	}
	others := without(devs, phase0)
	if resp := others[0].mustCheckIn(); resp.Director != nil {
		t.Fatal("a device outside the current phase was offered the update")
	}

	// Phase 1: both canaries verify their instruction and commit.
	docs := map[string][]byte{}
	for _, d := range phase0 {
		resp := d.mustCheckIn()
		if resp.Director == nil || resp.Mode != deviceapi.ModeAutomatic || resp.Rollout != fmt.Sprint(id) {
			t.Fatalf("canary %s got no instruction: %+v", d.serial, resp)
		}
		docs[d.id] = resp.Director
	}
	e.verifyDirector(phase0[0], phase0[1])
	for _, d := range phase0 {
		d.send("fw-2.0", deviceapi.EventDownloading, deviceapi.EventDownloaded, deviceapi.EventInstalling, deviceapi.EventRebooting, deviceapi.EventCommitted)
	}

	e.tick() // phase 1 done, no soak: advance and assign phase 2
	st := e.rolloutStatus(admin, id)
	if st.Rollout.Phase != 1 || st.Rollout.State != koshin.RolloutRunning || st.Phases[0].Succeeded != 2 {
		t.Fatalf("after phase 1: %+v", st)
	}
	phase1 := e.phaseDevices(admin, id, 1, byID)
	if len(phase1) != 4 {
		t.Fatalf("phase 2 has %d devices, want 4", len(phase1))
	}
	good, bad, silent, late := phase1[0], phase1[1], phase1[2], phase1[3]
	phase2 := without(others, phase1)

	good.mustCheckIn()
	good.send("fw-2.0", deviceapi.EventDownloading, deviceapi.EventInstalling, deviceapi.EventRebooting, deviceapi.EventCommitted)
	bad.mustCheckIn()
	bad.send("fw-2.0", deviceapi.EventDownloading, deviceapi.EventInstalling, deviceapi.EventRebooting, deviceapi.EventRolledBack)
	if resp := silent.mustCheckIn(); resp.Director == nil {
		t.Fatal("silent device was not offered the update")
	}
	e.tick()
	if st := e.rolloutStatus(admin, id); st.Rollout.State != koshin.RolloutRunning || st.Phases[1].Failed != 1 {
		t.Fatalf("one failure must not halt a threshold of two: %+v", st.Rollout)
	}

	// The late device is offered the update but never starts; the silent
	// one passes its deadline, which makes the second failure.
	e.clock.Advance(50 * time.Minute)
	if resp := late.mustCheckIn(); resp.Director == nil {
		t.Fatal("late device was not offered the update")
	}
	e.clock.Advance(11 * time.Minute)
	e.tick()

	st = e.rolloutStatus(admin, id)
	if st.Rollout.State != koshin.RolloutHalted || !strings.Contains(st.Rollout.HaltReason, "2 devices failed") {
		t.Fatalf("not halted at the threshold: %+v", st.Rollout)
	}
	states := e.assignmentStates(admin, id)
	want := map[string]koshin.AssignmentState{
		phase0[0].id: koshin.AssignmentCommitted, phase0[1].id: koshin.AssignmentCommitted,
		good.id: koshin.AssignmentCommitted, bad.id: koshin.AssignmentRolledBack,
		silent.id: koshin.AssignmentSilentFailed, late.id: koshin.AssignmentCancelled,
	}
	for dev, s := range want {
		if states[dev] != s {
			t.Errorf("device %s: %s, want %s", byID[dev].serial, states[dev], s)
		}
	}
	for _, d := range append([]*device{late}, phase2...) {
		if resp := d.mustCheckIn(); resp.Director != nil {
			t.Errorf("device %s received an assignment after the halt", d.serial)
		}
		if _, ok := states[d.id]; !ok && !slices.Contains(phase2, d) {
			t.Errorf("device %s has no assignment", d.serial)
		}
	}
	for _, d := range phase2 {
		if _, ok := states[d.id]; ok {
			t.Errorf("phase 3 device %s was assigned before its phase", d.serial)
		}
	}

	e.recoverFromHalt(admin, id, late, phase2)
	e.checkAudit(admin, id, devs)
	e.checkMetrics(admin)
}

// checkMetrics: the Prometheus endpoint reports what happened.
func (e *e2e) checkMetrics(admin string) {
	body := string(e.must(e.call("GET", "/metrics", admin, nil), 200).Body)
	for _, want := range []string{
		`koshin_checkins_total{answer="offer"}`, `koshin_checkins_total{answer="none"}`,
		`koshin_enrollments_total{method="preauthorized",result="ok"} 5`, `koshin_enrollments_total{method="token",result="ok"} 5`,
		`koshin_enrollments_total{method="token",result="denied"} 1`, `koshin_rollouts{state="aborted"} 1`,
		`koshin_device_events_total{type="committed"}`, `koshin_logins_total{result="ok"}`,
		`koshin_http_request_duration_seconds_count{api="device",code="200",route="POST /device/v1/checkin"}`,
	} {
		if !strings.Contains(body, want) {
			e.t.Errorf("metrics lack %s", want)
		}
	}
}

// enrollFleet enrolls n devices: the first half by a pre-authorisation CSV
// upload, the rest with one-time tokens, and checks that credentials are
// single-use and required.
func (e *e2e) enrollFleet(admin string, n int) []*device {
	t := e.t
	devs := make([]*device, n)
	csv := "serial,hardware_id,public_key,group,tags\n"
	for i := range devs {
		devs[i] = e.newDevice(fmt.Sprintf("SN-%04d", i), "board-a")
		if i < n/2 {
			csv += fmt.Sprintf("%s,board-a,%s,plant-7,region=eu;line=3\n", devs[i].serial, devs[i].publicKeyB64())
		}
	}
	e.must(e.callType("POST", "/api/v1/preauthorizations", admin, "text/csv", []byte(csv)), 201)
	for _, d := range devs[:n/2] {
		mustDo(t, d.enroll(""))
	}
	var tok string
	for _, d := range devs[n/2:] {
		var created struct{ Token string }
		e.must(e.call("POST", "/api/v1/enrollment-tokens", admin, map[string]any{"description": "bench", "group": "lab"}), 201).decode(t, &created)
		tok = created.Token
		mustDo(t, d.enroll(tok))
	}
	stranger := e.newDevice("SN-9999", "board-a")
	if err := stranger.enroll(tok); statusOf(err) != http.StatusUnauthorized {
		t.Fatalf("used token: %v", err)
	}
	if err := stranger.enroll(""); statusOf(err) != http.StatusUnauthorized {
		t.Fatalf("no credential: %v", err)
	}
	var d0 koshin.Device
	e.must(e.call("GET", "/api/v1/devices/"+devs[0].id, admin, nil), 200).decode(t, &d0)
	if d0.Group != "plant-7" || !d0.HasTag("region=eu") || d0.Serial != "SN-0000" {
		t.Fatalf("pre-authorised device: %+v", d0)
	}
	return devs
}

func statusOf(err error) int {
	var se *deviceapi.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func (e *e2e) createRollout(admin string, spec map[string]any) int64 {
	var created struct {
		Rollout struct{ ID int64 }
		Plan    struct{ Eligible int }
	}
	e.must(e.call("POST", "/api/v1/rollouts", admin, spec), 201).decode(e.t, &created)
	if created.Plan.Eligible == 0 {
		e.t.Fatalf("no eligible devices")
	}
	return created.Rollout.ID
}

type statusView struct {
	Rollout koshin.Rollout
	Phases  []koshin.PhaseStats
}

func (e *e2e) rolloutStatus(token string, id int64) statusView {
	var st statusView
	e.must(e.call("GET", fmt.Sprintf("/api/v1/rollouts/%d", id), token, nil), 200).decode(e.t, &st)
	return st
}

// phaseDevices lists a phase's devices in device-ID order.
func (e *e2e) phaseDevices(token string, id int64, phase int, byID map[string]*device) []*device {
	var l struct{ Items []koshin.Assignment }
	e.must(e.call("GET", fmt.Sprintf("/api/v1/rollouts/%d/assignments?phase=%d", id, phase), token, nil), 200).decode(e.t, &l)
	var out []*device
	for _, a := range l.Items {
		out = append(out, byID[a.DeviceID])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (e *e2e) assignmentStates(token string, id int64) map[string]koshin.AssignmentState {
	var l struct{ Items []koshin.Assignment }
	e.must(e.call("GET", fmt.Sprintf("/api/v1/rollouts/%d/assignments", id), token, nil), 200).decode(e.t, &l)
	out := map[string]koshin.AssignmentState{}
	for _, a := range l.Items {
		out[a.DeviceID] = a.State
	}
	return out
}

func without(all, drop []*device) []*device {
	var out []*device
	for _, d := range all {
		if !slices.Contains(drop, d) {
			out = append(out, d)
		}
	}
	return out
}

// verifyDirector runs the device-side verifier against the server: d
// provisions the image root and the director root, refreshes the image
// repository over mutual TLS (/device/v1/image), walks the director root
// chain (/device/v1/director) and accepts its own instruction for the
// nonce it sent. other's instruction and a stale nonce are refused.
func (e *e2e) verifyDirector(d, other *device) {
	t := e.t
	ctx := context.Background()
	imgRoot, err := os.ReadFile(filepath.Join(e.published, "1.root.json"))
	mustDo(t, err)
	dirRoot, err := e.srv.Director.RootVersion(1)
	mustDo(t, err)
	vdir := t.TempDir()
	mustDo(t, verify.Provision(vdir, imgRoot, dirRoot, trust.ChannelRelease))
	base := e.srv.DeviceURL()
	v, err := verify.New(verify.Config{
		Device: trust.Device{ID: d.id, HardwareID: d.hw, Channel: trust.ChannelRelease, Installed: map[string]uint64{"rootfs": 1}},
		Dir:    vdir, ImageURL: base + "/device/v1/image", DirectorURL: base + "/device/v1/director",
		TargetsURL: base + "/device/v1/targets", Now: e.clock.Now,
		Fetcher: &verify.HTTPFetcher{Client: verify.NewHTTPClient(e.tlsConfig(d.cert)), Now: e.clock.Now},
	})
	mustDo(t, err)
	mustDo(t, v.RefreshImage(ctx))
	if _, err := v.CheckDirector(ctx, other.lastDoc, d.nonce); !errors.Is(err, trust.ErrWrongDevice) {
		t.Fatalf("another device's instruction: %v, want ErrWrongDevice", err)
	}
	if _, err := v.CheckDirector(ctx, d.lastDoc, "a-nonce-never-sent-by-the-device"); !errors.Is(err, trust.ErrStaleNonce) {
		t.Fatalf("stale nonce: %v, want ErrStaleNonce", err)
	}
	plan, err := v.CheckDirector(ctx, d.lastDoc, d.nonce)
	if err != nil || len(plan.Targets) != 1 || plan.Targets[0].Name != "fw-2.0" {
		t.Fatalf("own instruction: %v %+v", err, plan)
	}
	e.download(d, plan.Targets[0])
}

// download fetches the payload the plan names with a Range request, as a
// resuming device does, and checks it.
func (e *e2e) download(d *device, in verify.Install) {
	t := e.t
	url := fmt.Sprintf("%s/device/v1/targets/%x.%s", e.srv.DeviceURL(), in.Hashes["sha256"], in.Name)
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Range", "bytes=11-")
	resp, err := e.httpClient(d.cert).Do(req)
	mustDo(t, err)
	defer resp.Body.Close()
	body := make([]byte, 64)
	n, _ := resp.Body.Read(body)
	if resp.StatusCode != http.StatusPartialContent || string(body[:n]) != "fw-2.0" {
		t.Fatalf("ranged download: %d %q", resp.StatusCode, body[:n])
	}
}

// recoverFromHalt is the operator's way out of a halt: resume with a
// threshold that accepts the understood failures. The device whose
// assignment the halt cancelled is assigned again, and once it commits the
// engine moves to the last phase, whose devices are offered the update.
func (e *e2e) recoverFromHalt(admin string, id int64, late *device, phase2 []*device) {
	t := e.t
	path := fmt.Sprintf("/api/v1/rollouts/%d/resume", id)
	e.must(e.call("POST", path, admin, nil), http.StatusConflict) // still over the threshold
	e.must(e.call("POST", path, admin, map[string]any{"threshold": map[string]any{"max_failures": 5}}), 200)
	e.tick()
	if resp := late.mustCheckIn(); resp.Director == nil {
		t.Fatal("the cancelled device was not offered the update after the resume")
	}
	late.send("fw-2.0", deviceapi.EventDownloading, deviceapi.EventInstalling, deviceapi.EventRebooting, deviceapi.EventCommitted)
	e.tick()
	st := e.rolloutStatus(admin, id)
	if st.Rollout.State != koshin.RolloutRunning || st.Rollout.Phase != 2 {
		t.Fatalf("after resume: %+v %+v", st.Rollout.State, st.Phases)
	}
	for _, d := range phase2 {
		if resp := d.mustCheckIn(); resp.Director == nil {
			t.Fatalf("phase 3 device %s not offered after resume", d.serial)
		}
	}
	e.must(e.call("POST", fmt.Sprintf("/api/v1/rollouts/%d/abort", id), admin, map[string]string{"reason": "end of test"}), 200)
}

// checkAudit reads the whole audit log as an auditor would and checks it
// names each kind of state change and verifies as a chain.
func (e *e2e) checkAudit(admin string, id int64, devs []*device) {
	t := e.t
	var l struct{ Items []koshin.AuditEntry }
	e.must(e.call("GET", "/api/v1/audit?limit=1000", admin, nil), 200).decode(t, &l)
	seen := map[string]int{}
	for _, a := range l.Items {
		seen[a.Action+" "+a.Result]++
	}
	target := fmt.Sprintf("rollout:%d", id)
	for action, min := range map[string]int{
		"operator.create ok": 1, "session.login ok": 1, "release.import ok": 1, "preauth.upload ok": 1,
		"enrollment-token.create ok": 5, "device.enroll ok": len(devs), "device.enroll denied": 2,
		"rollout.create ok": 1, "rollout.start ok": 1, "rollout.assign ok": 3, "rollout.advance ok": 2,
		"assignment.offer ok": 7, "assignment.committed ok": 4, "assignment.rolled-back ok": 1,
		"assignment.expire ok": 1, "rollout.halt ok": 1, "rollout.resume ok": 1, "rollout.resume failed": 1,
		"rollout.abort ok": 1,
	} {
		if seen[action] < min {
			t.Errorf("audit log has %d %q entries, want at least %d", seen[action], action, min)
		}
	}
	for _, a := range l.Items {
		if a.Action == "rollout.halt" && (a.Target != target || a.Principal != "system:rollout-engine") {
			t.Errorf("halt entry: %+v", a)
		}
	}
	var head koshin.AuditHead
	e.must(e.call("GET", "/api/v1/audit/verify", admin, nil), 200).decode(t, &head)
	if head.Seq != l.Items[len(l.Items)-1].Seq {
		t.Errorf("audit head %d, last entry %d", head.Seq, l.Items[len(l.Items)-1].Seq)
	}
}
