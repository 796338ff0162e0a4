package koshin_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

func TestParseDeviceQuery(t *testing.T) {
	tests := []struct {
		q    string
		want koshin.DeviceFilter
	}{
		{"", koshin.DeviceFilter{}},
		{"SN-2026", koshin.DeviceFilter{SerialPrefix: "SN-2026"}},
		{"group:plant-7 tag:region=eu tag:line:2 status:active",
			koshin.DeviceFilter{Group: "plant-7", Tags: []string{"region=eu", "line:2"}, Status: koshin.DeviceActive}},
		{"  id:ab12   hw:board-a ", koshin.DeviceFilter{IDPrefix: "ab12", HardwareID: "board-a"}},
		{"seen-before:2026-01-02T03:04:05Z", koshin.DeviceFilter{SeenBefore: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}},
	}
	for _, tt := range tests {
		got, err := koshin.ParseDeviceQuery(tt.q)
		if err != nil {
			t.Errorf("ParseDeviceQuery(%q): %v", tt.q, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseDeviceQuery(%q) = %+v, want %+v", tt.q, got, tt.want)
		}
	}
	for _, q := range []string{
		"colour:red", "group:a group:b", "group:", "status:lost", "id:XYZ", "seen-before:yesterday",
		"tag:a tag:b tag:c tag:d tag:e tag:f tag:g tag:h tag:i", strings.Repeat("a ", 17),
		strings.Repeat("x", koshin.MaxQueryLen+1), "serial:a%b",
	} {
		_, err := koshin.ParseDeviceQuery(q)
		wantCode(t, err, koshin.EINVALID)
	}
}

// FuzzParseDeviceQuery: no input panics, every accepted query validates,
// and rendering and parsing it again gives the same filter.
func FuzzParseDeviceQuery(f *testing.F) {
	for _, s := range []string{"group:plant-7 tag:region=eu status:active", "SN-1", "id:ab seen-before:2026-01-01T00:00:00.5+02:00", "tag::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		got, err := koshin.ParseDeviceQuery(q)
		if err != nil {
			if koshin.ErrorCode(err) != koshin.EINVALID {
				t.Fatalf("error code %q", koshin.ErrorCode(err))
			}
			return
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("accepted %q but filter invalid: %v", q, err)
		}
		again, err := koshin.ParseDeviceQuery(got.Query())
		if err != nil {
			t.Fatalf("re-parse of %q (from %q): %v", got.Query(), q, err)
		}
		if !again.SeenBefore.Equal(got.SeenBefore) {
			t.Fatalf("seen-before changed: %v vs %v", again.SeenBefore, got.SeenBefore)
		}
		again.SeenBefore, got.SeenBefore = time.Time{}, time.Time{}
		if !reflect.DeepEqual(again, got) {
			t.Fatalf("round trip of %q: %+v != %+v", q, again, got)
		}
	})
}
