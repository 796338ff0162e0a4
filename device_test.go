package koshin_test

import (
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

func TestDeviceValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*koshin.Device)
	}{
		{"id not key hash", func(d *koshin.Device) { d.ID = strings.Repeat("0", 64) }},
		{"no key", func(d *koshin.Device) { d.PublicKey = nil }},
		{"huge key", func(d *koshin.Device) {
			d.PublicKey = make([]byte, koshin.MaxPublicKeyLen+1)
			d.ID = koshin.DeviceID(d.PublicKey)
		}},
		{"no serial", func(d *koshin.Device) { d.Serial = "" }},
		{"serial with space", func(d *koshin.Device) { d.Serial = "SN 1" }},
		{"long serial", func(d *koshin.Device) { d.Serial = strings.Repeat("s", koshin.MaxIDLen+1) }},
		{"no hardware", func(d *koshin.Device) { d.HardwareID = "" }},
		{"short encryption key", func(d *koshin.Device) { d.EncryptionKey = make([]byte, 31) }},
		{"bad group", func(d *koshin.Device) { d.Group = "-x" }},
		{"bad tag", func(d *koshin.Device) { d.Tags = []string{"a b"} }},
		{"too many tags", func(d *koshin.Device) { d.Tags = make([]string, koshin.MaxTags+1) }},
		{"cert serial not hex", func(d *koshin.Device) { d.CertSerial = "xyz" }},
		{"poll too fast", func(d *koshin.Device) { d.PollInterval = time.Second }},
		{"bad status", func(d *koshin.Device) { d.Status = "lost" }},
		{"too many components", func(d *koshin.Device) { d.Inventory.Components = make([]koshin.Component, koshin.MaxComponents+1) }},
		{"bad integrity", func(d *koshin.Device) { d.Inventory.Security.BootIntegrity = "fine" }},
		{"huge counter", func(d *koshin.Device) {
			d.Inventory.Components = []koshin.Component{{Name: "rootfs", ReleaseCounter: koshin.MaxReleaseCounter + 1}}
		}},
	}
	d := MustDevice(t, "SN-1", "board-a")
	d.Tags, d.Group, d.CertSerial, d.EncryptionKey = []string{"region=eu"}, "plant-7", "0a1b", make([]byte, 32)
	if err := d.Validate(); err != nil {
		t.Fatalf("valid device rejected: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *d
			tt.mutate(&c)
			wantCode(t, c.Validate(), koshin.EINVALID)
		})
	}
}

func TestDeviceUpdateApply(t *testing.T) {
	d := MustDevice(t, "SN-1", "board-a")
	g, tags, poll := "g1", []string{"b", "a", "b"}, time.Minute
	u := koshin.DeviceUpdate{Group: &g, Tags: &tags, PollInterval: &poll}
	u.Apply(d)
	if d.Group != "g1" || strings.Join(d.Tags, ",") != "a,b" || d.PollInterval != poll {
		t.Fatalf("applied update = %+v", d)
	}
}

func TestInventoryDigestIgnoresComponentOrder(t *testing.T) {
	a := koshin.Inventory{Components: []koshin.Component{{Name: "app", Version: "1"}, {Name: "rootfs", Version: "2"}}}
	b := koshin.Inventory{Components: []koshin.Component{{Name: "rootfs", Version: "2"}, {Name: "app", Version: "1"}}}
	if string(a.Digest()) != string(b.Digest()) {
		t.Fatal("digest depends on component order")
	}
	if b.Components[0].Name != "rootfs" {
		t.Fatal("Digest reordered the caller's slice")
	}
	b.Security.FailedVerifications = 1
	if string(a.Digest()) == string(b.Digest()) {
		t.Fatal("digest ignores security state")
	}
	if c, ok := a.Component("rootfs"); !ok || c.Version != "2" {
		t.Fatalf("Component(rootfs) = %+v, %v", c, ok)
	}
}

func TestSelectorMatches(t *testing.T) {
	d := MustDevice(t, "SN-1", "board-a")
	d.Group, d.Tags = "plant-7", []string{"region=eu", "line-2"}
	d.Inventory.Settings.UpdatesEnabled = true
	rel := &koshin.Release{HardwareIDs: []string{"board-a"}}
	tests := []struct {
		sel  koshin.Selector
		want bool
	}{
		{koshin.Selector{All: true}, true},
		{koshin.Selector{Groups: []string{"plant-1", "plant-7"}}, true},
		{koshin.Selector{Groups: []string{"plant-1"}}, false},
		{koshin.Selector{Tags: []string{"region=us", "line-2"}}, true},
		{koshin.Selector{Tags: []string{"region=us"}}, false},
		{koshin.Selector{Groups: []string{"plant-7"}, HardwareIDs: []string{"board-b"}}, false},
		{koshin.Selector{DeviceIDs: []string{d.ID}}, true},
	}
	for i, tt := range tests {
		if err := tt.sel.Validate(); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if got := tt.sel.Eligible(d, rel); got != tt.want {
			t.Errorf("%d: Eligible = %v, want %v", i, got, tt.want)
		}
	}
	if (&koshin.Selector{All: true}).Eligible(d, &koshin.Release{HardwareIDs: []string{"board-b"}}) {
		t.Error("device eligible for a release of other hardware")
	}
	d.Inventory.Settings.UpdatesEnabled = false
	if !(&koshin.Selector{All: true}).Targets(d, rel) || (&koshin.Selector{All: true}).Eligible(d, rel) {
		t.Error("a device with updates switched off must be targeted but not eligible (CCDS UPE05)")
	}
	d.Inventory.Settings.UpdatesEnabled = true
	d.Status = koshin.DeviceDecommissioned
	if (&koshin.Selector{All: true}).Eligible(d, rel) {
		t.Error("decommissioned device eligible")
	}
	wantCode(t, (&koshin.Selector{}).Validate(), koshin.EINVALID)
	wantCode(t, (&koshin.Selector{All: true, Groups: []string{"g"}}).Validate(), koshin.EINVALID)
}
