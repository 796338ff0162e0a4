package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/advisory"
	"github.com/koshin-ota/koshin/anomaly"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/repo"
)

// addSecurityRelease stages, signs and publishes a release carrying the
// test advisory and SBOM, as `koshin release add --advisory --sbom` would.
func (e *e2e) addSecurityRelease(name string, counter uint64) {
	t := e.t
	r := e.reopenRepo()
	csaf, sbom := mustRead(t, advisoryCSAF), mustRead(t, advisorySBOM)
	advSum, err := r.StoreDocument(csaf)
	mustDo(t, err)
	sbomSum, err := r.StoreDocument(sbom)
	mustDo(t, err)
	c := trust.TargetCustom{HardwareIDs: []string{"board-a"}, Component: "rootfs", ReleaseCounter: counter, Version: name,
		Channel: trust.ChannelRelease, Security: true, Advisories: []string{"KSA-2026-001", "CVE-2026-1234", "CVE-2026-1235"},
		AdvisorySHA256: advSum, SBOMSHA256: sbomSum}
	mustDo(t, r.AddTarget(name, bytes.NewReader([]byte("payload of "+name)), c, nil))
	e.commit(r)
}

// The server's compliance evidence end to end: security.txt from the
// profile (5.2-1); a security release's advisory served to operators and,
// checked against the signed digest, to the device that is offered it, so
// its user learns which risks the update removes (5.3-11); a burst of
// refused updates raising one anomaly alert (5.10-1); and `koshin
// compliance report --server` following the fleet.
func TestComplianceEvidenceEndToEnd(t *testing.T) {
	profile, err := filepath.Abs("../../compliance/testdata/profile.yaml")
	mustDo(t, err)
	e := newE2E(t, e2eOpts{config: func(c *ServerConfig) { c.Compliance.Profile = profile }})
	e.addSecurityRelease("fw-2.0", 2)
	admin := e.adminToken()
	e.must(e.call("POST", "/api/v1/releases/import", admin, nil), 200)

	// security.txt needs no credentials.
	txt := e.must(e.call("GET", "/.well-known/security.txt", "", nil), 200)
	if !strings.Contains(string(txt.Body), "Contact: mailto:security@example.com\n") || !strings.Contains(string(txt.Body), "Policy: https://example.com/security\n") ||
		!strings.HasPrefix(txt.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("security.txt: %s %q", txt.Header.Get("Content-Type"), txt.Body)
	}

	// Operators read the advisory with its summary, and the SBOM.
	var adv struct {
		SHA256  string
		Summary advisory.Summary
	}
	e.must(e.call("GET", "/api/v1/releases/fw-2.0/advisory", admin, nil), 200).decode(t, &adv)
	if adv.Summary.ID != "KSA-2026-001" || adv.Summary.Severity != "HIGH" || len(adv.Summary.Vulnerabilities) != 2 {
		t.Fatalf("advisory summary: %+v", adv.Summary)
	}
	if sbom := e.must(e.call("GET", "/api/v1/releases/fw-2.0/sbom", admin, nil), 200); !bytes.Equal(sbom.Body, mustRead(t, advisorySBOM)) {
		t.Fatal("SBOM differs from the published one")
	}
	e.must(e.call("GET", "/api/v1/releases/nobody/advisory", admin, nil), 404)

	// Devices: board-a ones get the release; a board-b one may not read its advisory.
	var devs []*device
	for i := range 4 {
		d := e.enrollWithToken(admin, fmt.Sprintf("SN-%d", i))
		d.mustCheckIn()
		devs = append(devs, d)
	}
	other := e.newDevice("SN-B", "board-b")
	var tok struct{ Token string }
	e.must(e.call("POST", "/api/v1/enrollment-tokens", admin, map[string]any{}), 201).decode(t, &tok)
	mustDo(t, other.enroll(tok.Token))
	if _, err := other.client.Advisory(context.Background(), "fw-2.0"); statusOf(err) != http.StatusNotFound {
		t.Fatalf("board-b device read a board-a advisory: %v", err)
	}

	id := e.createRollout(admin, map[string]any{"release": "fw-2.0", "selector": map[string]any{"all": true},
		"phases": []map[string]any{{"percent": 100}}, "threshold": map[string]any{"max_failures": 10},
		"silence_timeout": int64(3600e9), "mode": "consent"})
	e.must(e.call("POST", fmt.Sprintf("/api/v1/rollouts/%d/start", id), admin, nil), 200)
	e.tick()
	d := devs[0]
	if resp := d.mustCheckIn(); resp.Director == nil {
		t.Fatal("release not offered")
	}
	in, ok := e.verifyOwn(d).Lookup("fw-2.0")
	if !ok {
		t.Fatal("verified plan lacks fw-2.0")
	}
	doc, err := d.client.Advisory(context.Background(), "fw-2.0")
	mustDo(t, err)
	csaf, err := advisory.VerifyCSAF(doc, in.Custom.AdvisorySHA256)
	mustDo(t, err)
	if text := csaf.Summarize().Text(); !strings.Contains(text, "Security update KSA-2026-001") || !strings.Contains(text, "CVE-2026-1234") {
		t.Fatalf("what the user is shown:\n%s", text)
	}

	// A burst of refused updates is an anomaly, raised once.
	e.anomalyTick()
	for _, d := range devs {
		for range 2 {
			d.send("fw-2.0", deviceapi.EventRejected)
		}
	}
	for range 3 {
		e.clock.Advance(time.Minute)
		e.anomalyTick()
	}
	var alerts struct{ Items []anomaly.Alert }
	e.must(e.call("GET", "/api/v1/anomalies", admin, nil), 200).decode(t, &alerts)
	if len(alerts.Items) != 2 || alerts.Items[0].Signal != anomaly.SignalRejected || !alerts.Items[0].Active() {
		t.Fatalf("alerts: %+v", alerts.Items)
	}

	// The report, computed from the server's facts, follows the fleet.
	report := func() string {
		t.Helper()
		return e.cliOK(admin, "compliance", "report", "--standard", "en303645", "--profile", profile, "--server", e.srv.ManagementURL())
	}
	out := report()
	for _, want := range []string{"| 5.3-6 | R C(9,12) | Y |", "| 5.10-1 | R C(6) | Y |", "anomaly detection running: 2 alerts in 30 days",
		"8 refused updates reported by 4 devices"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, d := range append(devs, other) {
		r := d.report()
		r.Settings.Automatic = false
		_, err := d.client.Report(context.Background(), d.key, r, d.freshNonce())
		mustDo(t, err)
	}
	if out := report(); !strings.Contains(out, "| 5.3-6 | R C(9,12) | N |") {
		t.Errorf("5.3-6 still met with automatic updates off everywhere:\n%s", out)
	}

	// A published advisory that no longer matches its signed digest is
	// served to no one.
	forged := bytes.Replace(doc, []byte(`"baseScore": 8.8, "baseSeverity": "HIGH"`), []byte(`"baseScore": 2.0, "baseSeverity": "LOW"`), 1)
	e.writeFileAt(filepath.Join(e.published, repo.DocumentPath(in.Custom.AdvisorySHA256, repo.DocumentAdvisory)), forged)
	e.must(e.call("GET", "/api/v1/releases/fw-2.0/advisory", admin, nil), 404)
	if _, err := d.client.Advisory(context.Background(), "fw-2.0"); statusOf(err) != http.StatusNotFound {
		t.Fatalf("forged advisory served to the device: %v", err)
	}
}

// anomalyTick runs one anomaly detector pass at the fake clock.
func (e *e2e) anomalyTick() {
	e.t.Helper()
	if err := e.srv.Anomaly.Tick(context.Background()); err != nil {
		e.t.Fatalf("anomaly tick: %v", err)
	}
}
