package deviceapi

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/trust"
)

func validReport() Report {
	return Report{
		DeviceID: "d1", Time: time.Unix(0, 0),
		HardwareID: "board-a",
		Components: []Component{{Name: "rootfs", Version: "1.0", ReleaseCounter: 1}},
		Slot:       SlotState{Active: "A", Healthy: true},
		Settings:   Settings{UpdatesEnabled: true, Automatic: true, Notifications: true},
		Security:   Security{BootIntegrity: "unverified"},
	}
}

func TestReportValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Report)
	}{
		{"bad device id", func(r *Report) { r.DeviceID = "a b" }},
		{"no hardware", func(r *Report) { r.HardwareID = "" }},
		{"too many components", func(r *Report) { r.Components = make([]Component, MaxComponents+1) }},
		{"bad component", func(r *Report) { r.Components[0].Name = "" }},
		{"huge counter", func(r *Report) { r.Components[0].ReleaseCounter = trust.MaxReleaseCounter + 1 }},
		{"bad integrity", func(r *Report) { r.Security.BootIntegrity = "fine" }},
		{"long notify", func(r *Report) { r.Settings.NotifyTarget = strings.Repeat("x", maxText+1) }},
	}
	ok := validReport()
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid report rejected: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validReport()
			tt.mutate(&r)
			if err := r.Validate(); !errors.Is(err, trust.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestCheckInValidate(t *testing.T) {
	good := CheckIn{Report: []byte(`{}`), Signature: []byte{1}, Nonce: strings.Repeat("a", 32)}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid check-in rejected: %v", err)
	}
	for name, mutate := range map[string]func(*CheckIn){
		"no report":     func(c *CheckIn) { c.Report = nil },
		"no signature":  func(c *CheckIn) { c.Signature = nil },
		"long sig":      func(c *CheckIn) { c.Signature = make([]byte, 257) },
		"no nonce":      func(c *CheckIn) { c.Nonce = "" },
		"short nonce":   func(c *CheckIn) { c.Nonce = "abc" },
		"long nonce":    func(c *CheckIn) { c.Nonce = strings.Repeat("n", trust.MaxNonceLen+1) },
		"control nonce": func(c *CheckIn) { c.Nonce = "0123456789abcdef\x07" },
	} {
		c := good
		mutate(&c)
		if err := c.Validate(); !errors.Is(err, trust.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestCheckInResponseValidate(t *testing.T) {
	good := CheckInResponse{PollInterval: 3600, PollJitter: 600}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, r := range []CheckInResponse{
		{PollInterval: 1},
		{PollInterval: 60, PollJitter: 61},
		{PollInterval: 60, Director: json.RawMessage(`{}`), Mode: "whenever"},
	} {
		if err := r.Validate(); !errors.Is(err, trust.ErrInvalid) {
			t.Errorf("%+v: err = %v, want ErrInvalid", r, err)
		}
	}
}

func TestEventBatchValidate(t *testing.T) {
	ev := Event{ID: "e1", Type: EventCommitted, Time: time.Unix(0, 0)}
	if err := (&EventBatch{Events: []Event{ev}}).Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []EventBatch{
		{},
		{Events: make([]Event, MaxEvents+1)},
		{Events: []Event{{ID: "e1", Type: "exploded"}}},
		{Events: []Event{{ID: "", Type: EventFailed}}},
		{Events: []Event{{ID: "e1", Type: EventFailed, Detail: strings.Repeat("d", maxText+1)}}},
	}
	for i, b := range bad {
		if err := b.Validate(); !errors.Is(err, trust.ErrInvalid) {
			t.Errorf("case %d: err = %v, want ErrInvalid", i, err)
		}
	}
}

// FuzzDecodeCheckIn: whatever a device sends, decoding and validation
// neither panic nor accept a report that fails re-validation.
func FuzzDecodeCheckIn(f *testing.F) {
	r := validReport()
	rb, _ := json.Marshal(r)
	ci, _ := json.Marshal(CheckIn{Report: rb, Signature: []byte{1}})
	f.Add(ci)
	f.Add([]byte(`{"report":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c CheckIn
		if json.Unmarshal(data, &c) != nil || c.Validate() != nil {
			return
		}
		var rep Report
		if json.Unmarshal(c.Report, &rep) != nil {
			return
		}
		if rep.Validate() == nil && len(rep.Components) > MaxComponents {
			t.Fatal("validated report exceeds component limit")
		}
	})
}

func FuzzDecodeEventBatch(f *testing.F) {
	f.Add([]byte(`{"events":[{"id":"a","type":"committed","time":"2026-01-01T00:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var b EventBatch
		if json.Unmarshal(data, &b) != nil || b.Validate() != nil {
			return
		}
		for _, e := range b.Events {
			if !eventTypes[e.Type] {
				t.Fatalf("accepted unknown type %q", e.Type)
			}
		}
	})
}
