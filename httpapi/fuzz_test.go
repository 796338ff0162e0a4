package httpapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/rollout"
)

// Every JSON decoder of both APIs is fuzzed through the same property:
// whatever the bytes, decoding and the handler's own validation either
// accept the value or refuse it with EINVALID and a message for the
// caller, and never panic (EN 303 645 5.13-1).

// fuzzJSON runs decodeStrict into a T and then check, and requires any
// refusal to be a clear EINVALID.
func fuzzJSON[T any](f *testing.F, seeds []string, check func(*T) error) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v T
		err := decodeStrict(data, &v)
		if err == nil && check != nil {
			err = check(&v)
		}
		requireClear(t, err)
	})
}

func requireClear(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if koshin.ErrorCode(err) != koshin.EINVALID || koshin.ErrorMessage(err) == "" {
		t.Fatalf("refusal is not a clear EINVALID: %v", err)
	}
}

func FuzzDecodeLogin(f *testing.F) {
	fuzzJSON(f, []string{`{"name":"alice","password":"x","totp":"123456"}`, `{"name":1}`},
		func(v *loginRequest) error { return v.validate() })
}

func FuzzDecodeOperatorCreate(f *testing.F) {
	fuzzJSON(f, []string{`{"name":"bob","role":"viewer","password":"a long password here"}`},
		func(v *operatorCreate) error {
			if err := koshin.ValidateID("Operator name", v.Name); err != nil {
				return err
			}
			return v.Role.Validate()
		})
}

func FuzzDecodeOperatorPatch(f *testing.F) {
	fuzzJSON(f, []string{`{"role":"admin","remove_totp":true}`, `{"password":"x"}`},
		func(v *operatorPatch) error {
			if v.Role != nil {
				return v.Role.Validate()
			}
			return nil
		})
}

func FuzzDecodePasswordChange(f *testing.F) {
	fuzzJSON[passwordChange](f, []string{`{"current":"a","new":"b"}`}, nil)
}

func FuzzDecodeTOTP(f *testing.F) {
	fuzzJSON[totpConfirm](f, []string{`{"code":"123456"}`}, nil)
}

func FuzzDecodeTokenRequest(f *testing.F) {
	fuzzJSON(f, []string{`{"name":"ci","role":"viewer","expires_at":"2027-01-01T00:00:00Z"}`},
		func(v *tokenRequest) error {
			if v.Role != "" {
				return v.Role.Validate()
			}
			return koshin.ValidateID("Token name", v.Name)
		})
}

func FuzzDecodeDevicePatch(f *testing.F) {
	fuzzJSON(f, []string{`{"group":"g","tags":["a=b"],"poll_interval":60000000000}`},
		func(v *devicePatch) error {
			d := koshin.Device{Status: koshin.DeviceActive}
			(&koshin.DeviceUpdate{Group: v.Group, Tags: v.Tags, PollInterval: v.PollInterval}).Apply(&d)
			if d.Group != "" {
				if err := koshin.ValidateID("Group", d.Group); err != nil {
					return err
				}
			}
			return nil
		})
}

func FuzzDecodeEnrollToken(f *testing.F) {
	fuzzJSON(f, []string{`{"description":"line 3","group":"g","tags":["x"]}`},
		func(v *enrollTokenRequest) error {
			t := koshin.EnrollmentToken{Hash: koshin.HashSecret("x"), Description: v.Description, Group: v.Group,
				Tags: v.Tags, CreatedBy: "op", ExpiresAt: time.Unix(1, 0)}
			return t.Validate()
		})
}

func FuzzDecodeRolloutSpec(f *testing.F) {
	fuzzJSON(f, []string{
		`{"release":"fw-2.0","selector":{"all":true},"phases":[{"percent":1},{"percent":100,"soak":3600000000000}],"threshold":{"max_failures":2},"silence_timeout":3600000000000,"mode":"automatic"}`,
		`{"release":"fw","selector":{"groups":["g"]},"phases":[{"count":5,"manual":true}],"threshold":{"max_failure_percent":5.5},"silence_timeout":60000000000,"mode":"approval","window":{"cron":"0 2 * * *","duration":3600000000000,"time_zone":"Europe/Berlin"}}`,
	}, func(v *rolloutSpec) error {
		r := v.rollout()
		r.CreatedBy = "operator:x"
		return r.Validate()
	})
}

func FuzzDecodeRolloutUpdate(f *testing.F) {
	fuzzJSON(f, []string{`{"threshold":{"max_failures":9},"clear_window":true,"rate_per_minute":5}`},
		func(v *koshin.RolloutUpdate) error {
			r := koshin.Rollout{Threshold: koshin.Threshold{MaxFailures: 1}, SilenceTimeout: time.Hour}
			return v.Apply(&r)
		})
}

func FuzzDecodeApproval(f *testing.F) {
	fuzzJSON(f, []string{`{"all":true}`, `{"group":"plant-7"}`, `{"device_ids":["` + strings.Repeat("a", 64) + `"]}`},
		func(v *rollout.Approval) error { return v.Validate() })
}

func FuzzDecodeAdvance(f *testing.F) {
	fuzzJSON[advanceRequest](f, []string{`{"from":0}`}, nil)
}

func FuzzDecodeAbort(f *testing.F) {
	fuzzJSON[abortRequest](f, []string{`{"reason":"bad batch"}`}, nil)
}

func FuzzDecodeEnroll(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	req, _ := json.Marshal(deviceapi.EnrollRequest{CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})),
		Serial: "SN-1", HardwareID: "board-a", Token: "kenr_x", EncryptionKey: base64.StdEncoding.EncodeToString(make([]byte, 32))})
	fuzzJSON(f, []string{string(req)}, func(v *deviceapi.EnrollRequest) error {
		_, err := parseEnroll(v)
		return err
	})
}

// FuzzCheckIn feeds check-in bodies through the whole pure path: envelope,
// signature with the enrolled key, strict report decoding, validation and
// the device binding.
func FuzzCheckIn(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := x509.MarshalPKIXPublicKey(key.Public())
	dev := &koshin.Device{ID: koshin.DeviceID(pub), HardwareID: "board-a", PublicKey: pub}
	rep := deviceapi.Report{DeviceID: dev.ID, HardwareID: "board-a",
		Components: []deviceapi.Component{{Name: "rootfs", Version: "1", ReleaseCounter: 1}},
		Slot:       deviceapi.SlotState{Active: "A", Healthy: true}, Security: deviceapi.Security{BootIntegrity: "verified"}}
	ci, _ := deviceapi.SignReport(key, rep)
	ci.Nonce = strings.Repeat("ab", 16)
	good, _ := json.Marshal(ci)
	fuzzJSON(f, []string{string(good), `{"report":{},"signature":"AQ==","nonce":"0123456789abcdef"}`}, func(v *deviceapi.CheckIn) error {
		got, err := checkReport(v, dev, key.Public())
		if err == nil && (got.DeviceID != dev.ID || deviceapi.ValidateNonce(v.Nonce) != nil) {
			panic("accepted a report not bound to the device")
		}
		return err
	})
}

func FuzzDecodeEvents(f *testing.F) {
	fuzzJSON(f, []string{`{"events":[{"id":"e1","type":"committed","target":"fw-2.0","time":"2026-01-01T00:00:00Z"}]}`},
		func(v *deviceapi.EventBatch) error {
			evs, err := domainEvents(v)
			if err != nil {
				return err
			}
			for i := range evs {
				evs[i].DeviceID = strings.Repeat("a", 64)
				if err := evs[i].Validate(); err != nil {
					return err
				}
			}
			return nil
		})
}

// FuzzPreauthCSV: every upload either parses into valid records or is
// refused with a message naming the problem.
func FuzzPreauthCSV(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	f.Add([]byte("serial,hardware_id,public_key,group,tags\nSN-1,board-a," + base64.StdEncoding.EncodeToString(der) + ",g,a;b\n"))
	f.Add([]byte("serial,public_key,hardware_id\n\"SN\n1\",x,y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := parsePreauthCSV(data)
		requireClear(t, err)
		for _, p := range ps {
			if p.Validate() != nil {
				t.Fatalf("accepted an invalid record %+v", p)
			}
		}
	})
}

// FuzzQuery: query strings of list endpoints.
func FuzzQuery(f *testing.F) {
	f.Add("limit=10&cursor=5&order=desc&since=2026-01-01T00:00:00Z&unused=true&q=group:g+tag:x")
	f.Add("limit=%zz")
	f.Fuzz(func(t *testing.T, raw string) {
		r := httptest.NewRequest("GET", "/x", nil)
		r.URL.RawQuery = raw
		q := newQuery(r)
		p := q.seqPage()
		q.time("since")
		q.bool("unused")
		df, err := koshin.ParseDeviceQuery(q.str("q"))
		requireClear(t, err)
		if q.err != nil {
			requireClear(t, q.err)
			return
		}
		if err := p.Validate(); err != nil {
			requireClear(t, err)
		}
		df.Limit = q.int("limit")
		requireClear(t, df.Validate())
	})
}
