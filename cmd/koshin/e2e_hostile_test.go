package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/deviceapi"
)

// hostile is one bad request and the status class it must get.
type hostile struct {
	name, method, path, ctype string
	body                      []byte
}

// hostileBodies are the malformed variants every JSON endpoint is given.
func hostileBodies() map[string][]byte {
	return map[string][]byte{
		"malformed":     []byte(`{"name": `),
		"not an object": []byte(`[1,2,3]`),
		"trailing data": []byte(`{} {}`),
		"unknown field": []byte(`{"surprise": true}`),
		"wrong types":   []byte(`{"name": 7, "role": [], "release": {}, "phases": "all", "tags": "x", "from": "one"}`),
		"oversized":     append(append([]byte(`{"name":"`), bytes.Repeat([]byte("A"), 2<<20)...), `"}`...),
		"deep nesting":  []byte(strings.Repeat("[", 100000) + strings.Repeat("]", 100000)),
		"control bytes": []byte("{\"name\":\"a\x00b\"}"),
		"empty":         nil,
	}
}

// state is everything a management or device request could change.
type state map[string]int

func (e *e2e) snapshot(admin string) state {
	s := state{}
	for _, p := range []string{"/api/v1/operators", "/api/v1/devices", "/api/v1/releases?include_revoked=true", "/api/v1/rollouts",
		"/api/v1/preauthorizations", "/api/v1/enrollment-tokens", "/api/v1/tokens", "/api/v1/events"} {
		var l struct{ Items []json.RawMessage }
		e.must(e.call("GET", p+sep(p)+"limit=1000", admin, nil), 200).decode(e.t, &l)
		s[p] = len(l.Items)
	}
	var d struct{ Items []koshin.Device }
	e.must(e.call("GET", "/api/v1/devices?limit=1000", admin, nil), 200).decode(e.t, &d)
	for _, dev := range d.Items {
		s["inventory of "+dev.Serial] = len(dev.Inventory.Components)
		s["seen "+dev.Serial] = int(dev.LastSeenAt.Unix())
	}
	return s
}

func sep(p string) string {
	if strings.Contains(p, "?") {
		return "&"
	}
	return "?"
}

// TestHostileManagementInputs sends malformed, oversized and hostile
// bodies and query strings to every management endpoint that takes them:
// each gets a 4xx with a message saying what is wrong, and nothing changes
// (EN 303 645 5.13-1).
func TestHostileManagementInputs(t *testing.T) {
	e := newE2E(t, e2eOpts{config: func(c *ServerConfig) { c.Limits.AddrBurst, c.Limits.LoginBurst = 100000, 100000 }},
		e2eRelease{name: "fw-2.0", hw: []string{"board-a"}, counter: 2})
	admin := e.adminToken()
	e.must(e.call("POST", "/api/v1/releases/import", admin, nil), 200)
	d := e.enrollWithToken(admin, "SN-1")
	d.mustCheckIn()
	before := e.snapshot(admin)

	var cases []hostile
	for _, rt := range bodyRoutes() {
		for name, body := range hostileBodies() {
			cases = append(cases, hostile{name, rt[0], samplePath(rt[1]), "application/json", body})
		}
		cases = append(cases, hostile{"form post", rt[0], samplePath(rt[1]), "application/x-www-form-urlencoded", []byte("name=x")})
	}
	cases = append(cases, hostileQueries()...)
	cases = append(cases, hostileCSV()...)
	for _, c := range cases {
		a := e.callType(c.method, c.path, admin, c.ctype, c.body)
		var eb deviceapi.ErrorBody
		json.Unmarshal(a.Body, &eb)
		if !clearRefusal(a.Status, eb.Error) || a.Status == 401 || a.Status == 403 {
			t.Errorf("%s %s (%s): %d %q", c.method, c.path, c.name, a.Status, truncateForLog(a.Body))
		}
	}
	if after := e.snapshot(admin); !equalState(before, after) {
		t.Fatalf("hostile input changed state:\nbefore %v\nafter  %v", before, after)
	}
}

// bodyRoutes are the management routes that read a JSON body.
func bodyRoutes() [][2]string {
	return [][2]string{
		{"POST", "/api/v1/sessions"}, {"PUT", "/api/v1/me/password"}, {"POST", "/api/v1/me/totp/confirm"},
		{"DELETE", "/api/v1/me/totp"}, {"POST", "/api/v1/tokens"}, {"POST", "/api/v1/operators"},
		{"PATCH", "/api/v1/operators/root-admin"}, {"PATCH", "/api/v1/devices/{id}"}, {"POST", "/api/v1/enrollment-tokens"},
		{"POST", "/api/v1/rollouts"}, {"PATCH", "/api/v1/rollouts/1"}, {"POST", "/api/v1/rollouts/1/advance"},
		{"POST", "/api/v1/rollouts/1/approvals"}, {"POST", "/api/v1/rollouts/1/abort"}, {"POST", "/api/v1/rollouts/1/resume"},
	}
}

func hostileQueries() []hostile {
	var out []hostile
	for _, q := range []string{
		"/api/v1/devices?limit=-1", "/api/v1/devices?limit=abc", "/api/v1/devices?limit=100000",
		"/api/v1/devices?q=" + strings.Repeat("x", 600), "/api/v1/devices?q=color:blue", "/api/v1/devices?after=../../etc",
		"/api/v1/events?since=yesterday", "/api/v1/events?device_id=zz", "/api/v1/events?type=exploded",
		"/api/v1/events?cursor=-5", "/api/v1/audit?cursor=1e99", "/api/v1/rollouts?state=flying",
		"/api/v1/rollouts/0", "/api/v1/rollouts/-1/start", "/api/v1/rollouts/abc", "/api/v1/releases/..%2F..%2Fetc",
		"/api/v1/preauthorizations?unused=maybe", "/api/v1/devices?" + strings.Repeat("a=b&", 1000),
		"/api/v1/nothing-here", "/api/v1/devices/%00",
	} {
		out = append(out, hostile{"query", "GET", q, "", nil})
	}
	return out
}

func hostileCSV() []hostile {
	var out []hostile
	for name, body := range map[string]string{
		"no header":   "SN-1,board-a,AAAA\n",
		"bad column":  "serial,hardware_id,public_key,password\nSN-1,board-a,AAAA,x\n",
		"bad base64":  "serial,hardware_id,public_key\nSN-1,board-a,!!!\n",
		"rsa key":     "serial,hardware_id,public_key\nSN-1,board-a,MA0GCSqGSIb3DQEBAQUAA\n",
		"bad serial":  "serial,hardware_id,public_key\nSN 1,board-a,AAAA\n",
		"quote mess":  "serial,hardware_id,public_key\n\"SN-1,board-a,AAAA\n",
		"field count": "serial,hardware_id,public_key\nSN-1,board-a\n",
		"empty":       "serial,hardware_id,public_key\n",
		"oversized":   "serial,hardware_id,public_key\n" + strings.Repeat("SN-1,board-a,AAAA\n", 600000),
	} {
		out = append(out, hostile{"csv " + name, "POST", "/api/v1/preauthorizations", "text/csv", []byte(body)})
	}
	return out
}

// clearRefusal: a client error that is about the request, not a rate
// limit or overload (which would hide whether the input was checked), with
// a message.
func clearRefusal(status int, msg string) bool {
	return status >= 400 && status < 500 && status != 429 && msg != ""
}

func equalState(a, b state) bool {
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

func truncateForLog(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// TestHostileDeviceInputs does the same for the device API: enrollment,
// check-in and events refuse malformed, oversized, unsigned, mis-signed
// and misattributed input with a 4xx and store nothing.
func TestHostileDeviceInputs(t *testing.T) {
	e := newE2E(t, e2eOpts{config: func(c *ServerConfig) {
		c.Limits.AddrBurst, c.Limits.DeviceBurst = 100000, 100000
	}})
	admin := e.adminToken()
	d := e.enrollWithToken(admin, "SN-1")
	d.mustCheckIn()
	before := e.snapshot(admin)

	for name, body := range hostileBodies() {
		for _, p := range []string{deviceapi.PathEnroll, deviceapi.PathCheckIn, deviceapi.PathEvents} {
			e.expect4xx(t, d, p, name, body)
		}
	}
	for name, req := range hostileEnrollments(d) {
		body, _ := json.Marshal(req)
		e.expect4xx(t, nil, deviceapi.PathEnroll, name, body)
	}
	for name, ci := range hostileCheckIns(t, d) {
		body, _ := json.Marshal(ci)
		e.expect4xx(t, d, deviceapi.PathCheckIn, name, body)
	}
	for name, b := range hostileEvents() {
		body, _ := json.Marshal(b)
		e.expect4xx(t, d, deviceapi.PathEvents, name, body)
	}
	for _, p := range []string{"/device/v1/image/../../etc/passwd", "/device/v1/image/..%2Fkoshin.db", "/device/v1/targets/x",
		"/device/v1/director/0.root.json", "/device/v1/director/99999999999999999999.root.json", "/device/v1/image/secret.key"} {
		resp, err := e.httpClient(d.cert).Get(e.srv.DeviceURL() + p)
		mustDo(t, err)
		resp.Body.Close()
		if resp.StatusCode != 404 && resp.StatusCode != 400 {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
	}
	if after := e.snapshot(admin); !equalState(before, after) {
		t.Fatalf("hostile device input changed state:\nbefore %v\nafter  %v", before, after)
	}
}

// expect4xx posts body to path with d's certificate (nil: none).
func (e *e2e) expect4xx(t *testing.T, d *device, path, name string, body []byte) {
	t.Helper()
	client := e.httpClient(nil)
	if d != nil {
		client = e.httpClient(d.cert)
	}
	resp, err := client.Post(e.srv.DeviceURL()+path, "application/json", bytes.NewReader(body))
	mustDo(t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var eb deviceapi.ErrorBody
	json.Unmarshal(data, &eb)
	if !clearRefusal(resp.StatusCode, eb.Error) {
		t.Errorf("%s (%s): %d %s", path, name, resp.StatusCode, truncateForLog(data))
	}
}

func hostileEnrollments(d *device) map[string]deviceapi.EnrollRequest {
	good := deviceapi.EnrollRequest{CSR: d.csr(), Serial: "SN-new", HardwareID: "board-a", Token: "kenr_unknown"}
	mod := func(f func(*deviceapi.EnrollRequest)) deviceapi.EnrollRequest { r := good; f(&r); return r }
	return map[string]deviceapi.EnrollRequest{
		"unknown token": good,
		"garbage CSR": mod(func(r *deviceapi.EnrollRequest) {
			r.CSR = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
		}),
		"huge CSR":          mod(func(r *deviceapi.EnrollRequest) { r.CSR = strings.Repeat("A", 9000) }),
		"serial with space": mod(func(r *deviceapi.EnrollRequest) { r.Serial = "SN 1" }),
		"long token":        mod(func(r *deviceapi.EnrollRequest) { r.Token = strings.Repeat("t", 200) }),
		"bad X25519 key":    mod(func(r *deviceapi.EnrollRequest) { r.EncryptionKey = "AAAA" }),
		"no hardware":       mod(func(r *deviceapi.EnrollRequest) { r.HardwareID = "" }),
		"renew as another":  mod(func(r *deviceapi.EnrollRequest) { r.Token = ""; r.Serial = "SN-2" }), // d's key, another serial
	}
}

func hostileCheckIns(t *testing.T, d *device) map[string]deviceapi.CheckIn {
	nonce := d.freshNonce()
	sign := func(r deviceapi.Report) deviceapi.CheckIn {
		ci, err := deviceapi.SignReport(d.key, r)
		mustDo(t, err)
		ci.Nonce = nonce
		return ci
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	misSigned, _ := deviceapi.SignReport(other, d.report())
	misSigned.Nonce = nonce
	withNonce := func(n string) deviceapi.CheckIn { ci := sign(d.report()); ci.Nonce = n; return ci }
	rep := mustJSON(d.report())
	raw := append(rep[:len(rep)-1:len(rep)-1], []byte(`,"admin":true}`)...) // validly signed, with a field the API lacks
	sum := sha256.Sum256(raw)
	sig, err := ecdsa.SignASN1(rand.Reader, d.key, sum[:])
	mustDo(t, err)
	r := func(f func(*deviceapi.Report)) deviceapi.CheckIn { rep := d.report(); f(&rep); return sign(rep) }
	return map[string]deviceapi.CheckIn{
		"unsigned":          {Report: mustJSON(d.report()), Signature: []byte{1, 2, 3}, Nonce: nonce},
		"signed by another": misSigned,
		"extra field":       {Report: raw, Signature: sig, Nonce: nonce},
		"another device":    r(func(rep *deviceapi.Report) { rep.DeviceID = strings.Repeat("ab", 32) }),
		"another hardware":  r(func(rep *deviceapi.Report) { rep.HardwareID = "board-z" }),
		"control nonce":     withNonce("0123456789abcdef\x07\x08"),
		"short nonce":       withNonce("abc"),
		"no nonce":          withNonce(""),
		"many components":   r(func(rep *deviceapi.Report) { rep.Components = make([]deviceapi.Component, 40) }),
		"bad integrity":     r(func(rep *deviceapi.Report) { rep.Security.BootIntegrity = "probably" }),
		"huge counter":      r(func(rep *deviceapi.Report) { rep.Components[0].ReleaseCounter = 1 << 60 }),
		"empty signature":   {Report: mustJSON(d.report()), Nonce: nonce},
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func hostileEvents() map[string]deviceapi.EventBatch {
	ev := func(f func(*deviceapi.Event)) deviceapi.EventBatch {
		e := deviceapi.Event{ID: "e1", Type: deviceapi.EventFailed, Target: "fw-2.0"}
		f(&e)
		return deviceapi.EventBatch{Events: []deviceapi.Event{e}}
	}
	many := deviceapi.EventBatch{}
	for i := range 101 {
		many.Events = append(many.Events, deviceapi.Event{ID: fmt.Sprint("e", i), Type: deviceapi.EventFailed})
	}
	return map[string]deviceapi.EventBatch{
		"no events":      {},
		"too many":       many,
		"unknown type":   ev(func(e *deviceapi.Event) { e.Type = "exploded" }),
		"bad id":         ev(func(e *deviceapi.Event) { e.ID = "a b" }),
		"long detail":    ev(func(e *deviceapi.Event) { e.Detail = strings.Repeat("d", 2000) }),
		"bad target":     ev(func(e *deviceapi.Event) { e.Target = "../../etc/passwd" }),
		"long reason":    ev(func(e *deviceapi.Event) { e.Reason = strings.Repeat("r", 200) }),
		"slash in event": ev(func(e *deviceapi.Event) { e.ID = "/" }),
	}
}
