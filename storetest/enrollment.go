package storetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

func preauth(t *testing.T, serial string) *koshin.PreAuthorization {
	return &koshin.PreAuthorization{Serial: serial, HardwareID: "board-a", PublicKey: NewKey(t), Group: "factory", Tags: []string{"batch-7"}}
}

// deviceFor returns the device that a pre-authorisation admits.
func deviceFor(p *koshin.PreAuthorization) *koshin.Device {
	return &koshin.Device{
		ID: koshin.DeviceID(p.PublicKey), Serial: p.Serial, HardwareID: p.HardwareID, PublicKey: p.PublicKey,
		Status: koshin.DeviceActive, CertSerial: "0abc",
	}
}

// testPreAuthorizations: uploads are all-or-nothing and refuse duplicate
// serials and keys; each admits exactly its own device, once (CCDS HLC05).
func testPreAuthorizations(t *testing.T, e *env) {
	a, b := preauth(t, "SN-A"), preauth(t, "SN-B")
	must(t, e.s.CreatePreAuthorizations(e.ctx, []*koshin.PreAuthorization{a, b}))

	dupSerial := preauth(t, "SN-A")
	wantCode(t, e.s.CreatePreAuthorizations(e.ctx, []*koshin.PreAuthorization{preauth(t, "SN-C"), dupSerial}), koshin.ECONFLICT)
	dupKey := preauth(t, "SN-D")
	dupKey.PublicKey = b.PublicKey
	wantCode(t, e.s.CreatePreAuthorizations(e.ctx, []*koshin.PreAuthorization{dupKey}), koshin.ECONFLICT)
	twice := preauth(t, "SN-E")
	wantCode(t, e.s.CreatePreAuthorizations(e.ctx, []*koshin.PreAuthorization{twice, twice}), koshin.ECONFLICT)
	wantCode(t, e.s.CreatePreAuthorizations(e.ctx, nil), koshin.EINVALID)
	list, err := e.s.FindPreAuthorizations(e.ctx, koshin.PreAuthorizationFilter{})
	must(t, err)
	if len(list) != 2 {
		t.Fatalf("refused uploads left %d records, want 2", len(list))
	}

	// Wrong key or hardware: refused, and the record stays usable.
	wrong := deviceFor(a)
	wrong.PublicKey = NewKey(t)
	wrong.ID = koshin.DeviceID(wrong.PublicKey)
	_, err = e.s.EnrollDevice(e.ctx, koshin.Enrollment{Device: wrong}, e.clock.Now())
	wantCode(t, err, koshin.EUNAUTHORIZED)
	wrongHW := deviceFor(a)
	wrongHW.HardwareID = "board-z"
	_, err = e.s.EnrollDevice(e.ctx, koshin.Enrollment{Device: wrongHW}, e.clock.Now())
	wantCode(t, err, koshin.EUNAUTHORIZED)

	d, err := e.s.EnrollDevice(e.ctx, koshin.Enrollment{Device: deviceFor(a)}, e.clock.Now())
	must(t, err)
	if d.Group != "factory" || !slices.Equal(d.Tags, []string{"batch-7"}) || d.Status != koshin.DeviceActive {
		t.Fatalf("enrolled = %+v", d)
	}
	equalTime(t, "enrolled at", d.EnrolledAt, e.clock.Now())
	_, err = e.s.EnrollDevice(e.ctx, koshin.Enrollment{Device: deviceFor(a)}, e.clock.Now())
	wantCode(t, err, koshin.EUNAUTHORIZED)

	unused, err := e.s.FindPreAuthorizations(e.ctx, koshin.PreAuthorizationFilter{Unused: true})
	must(t, err)
	if len(unused) != 1 || unused[0].Serial != "SN-B" {
		t.Fatalf("unused = %+v", unused)
	}
	// An enrolled key or serial cannot be pre-authorised again.
	again := preauth(t, "SN-F")
	again.PublicKey = a.PublicKey
	wantCode(t, e.s.CreatePreAuthorizations(e.ctx, []*koshin.PreAuthorization{again}), koshin.ECONFLICT)

	must(t, e.s.DeletePreAuthorization(e.ctx, "SN-B"))
	wantCode(t, e.s.DeletePreAuthorization(e.ctx, "SN-B"), koshin.ENOTFOUND)
	_, err = e.s.EnrollDevice(e.ctx, koshin.Enrollment{Device: deviceFor(b)}, e.clock.Now())
	wantCode(t, err, koshin.EUNAUTHORIZED)
}

func newToken(t *testing.T, e *env, ttl time.Duration) (string, *koshin.EnrollmentToken) {
	secret := koshin.NewSecret()
	tok := &koshin.EnrollmentToken{
		Hash: koshin.HashSecret(secret), Description: "line 3", Group: "lab", Tags: []string{"dev"},
		CreatedBy: "alice", ExpiresAt: e.clock.Now().Add(ttl),
	}
	must(t, e.s.CreateEnrollmentToken(e.ctx, tok))
	return secret, tok
}

// testEnrollmentTokens: a token enrolls one device before it expires; a
// refused enrollment (duplicate key) does not use it up.
func testEnrollmentTokens(t *testing.T, e *env) {
	secret, tok := newToken(t, e, time.Hour)
	if tok.ID == 0 || tok.CreatedAt.IsZero() {
		t.Fatalf("token not stored: %+v", tok)
	}
	dupHash := *tok
	wantCode(t, e.s.CreateEnrollmentToken(e.ctx, &dupHash), koshin.ECONFLICT)
	existing := e.createDevice(t, "SN-X", "board-a")
	clash := NewDevice(t, "SN-NEW", "board-a")
	clash.PublicKey, clash.ID = existing.PublicKey, existing.ID
	_, err := e.s.EnrollDevice(e.ctx, koshin.Enrollment{Device: clash, TokenHash: koshin.HashSecret(secret)}, e.clock.Now())
	wantCode(t, err, koshin.ECONFLICT)
	sameSerial := NewDevice(t, "SN-X", "board-a")
	_, err = e.s.EnrollDevice(e.ctx, koshin.Enrollment{Device: sameSerial, TokenHash: koshin.HashSecret(secret)}, e.clock.Now())
	wantCode(t, err, koshin.ECONFLICT)

	d, err := e.s.EnrollDevice(e.ctx, koshin.Enrollment{Device: NewDevice(t, "SN-1", "board-a"), TokenHash: koshin.HashSecret(secret)}, e.clock.Now())
	must(t, err)
	if d.Group != "lab" || !slices.Equal(d.Tags, []string{"dev"}) {
		t.Fatalf("token's group and tags not applied: %+v", d)
	}
	_, err = e.s.EnrollDevice(e.ctx, koshin.Enrollment{Device: NewDevice(t, "SN-2", "board-a"), TokenHash: koshin.HashSecret(secret)}, e.clock.Now())
	wantCode(t, err, koshin.EUNAUTHORIZED)

	expiring, _ := newToken(t, e, time.Minute)
	_, err = e.s.EnrollDevice(e.ctx, koshin.Enrollment{Device: NewDevice(t, "SN-3", "board-a"), TokenHash: koshin.HashSecret(expiring)},
		e.clock.Now().Add(time.Minute))
	wantCode(t, err, koshin.EUNAUTHORIZED)
	_, err = e.s.EnrollDevice(e.ctx, koshin.Enrollment{Device: NewDevice(t, "SN-4", "board-a"), TokenHash: koshin.HashSecret("guess")}, e.clock.Now())
	wantCode(t, err, koshin.EUNAUTHORIZED)

	tokens, err := e.s.FindEnrollmentTokens(e.ctx, koshin.SeqPage{})
	must(t, err)
	if len(tokens) != 2 || tokens[0].DeviceID != d.ID || tokens[0].UsedAt.IsZero() || !tokens[1].UsedAt.IsZero() {
		t.Fatalf("tokens = %+v", tokens)
	}
	must(t, e.s.DeleteEnrollmentToken(e.ctx, tokens[1].ID))
	wantCode(t, e.s.DeleteEnrollmentToken(e.ctx, tokens[1].ID), koshin.ENOTFOUND)

	bad := &koshin.EnrollmentToken{Hash: koshin.HashSecret("x"), CreatedBy: "alice", ExpiresAt: e.clock.Now().Add(koshin.MaxTokenLifetime + time.Hour)}
	wantCode(t, e.s.CreateEnrollmentToken(e.ctx, bad), koshin.EINVALID)
	bad.ExpiresAt, bad.Hash = e.clock.Now().Add(time.Hour), []byte("short")
	wantCode(t, e.s.CreateEnrollmentToken(e.ctx, bad), koshin.EINVALID)
}

// testEnrollmentTokenRace: of many devices presenting one token at once,
// exactly one enrolls.
func testEnrollmentTokenRace(t *testing.T, e *env) {
	secret, _ := newToken(t, e, time.Hour)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		d := NewDevice(t, "RACE-"+string(rune('A'+i)), "board-a")
		wg.Go(func() {
			_, errs[i] = e.s.EnrollDevice(e.ctx, koshin.Enrollment{Device: d, TokenHash: koshin.HashSecret(secret)}, e.clock.Now())
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch koshin.ErrorCode(err) {
		case "":
			won++
		case koshin.EUNAUTHORIZED:
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d devices enrolled with one token", won)
	}
}
