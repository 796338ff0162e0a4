package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/koshin-ota/koshin"
)

// testSettings: the first claim of a name wins, later and concurrent claims
// (also through another replica's handle) read the winner's value.
func testSettings(t *testing.T, e *env) {
	got, err := e.s.ClaimSetting(e.ctx, koshin.SettingDeviceCA, "aa")
	if err != nil || got != "aa" {
		t.Fatalf("first claim: %q, %v", got, err)
	}
	if got, err = e.s.ClaimSetting(e.ctx, koshin.SettingDeviceCA, "bb"); err != nil || got != "aa" {
		t.Fatalf("second claim: %q, %v", got, err)
	}
	for _, bad := range [][2]string{{"", "x"}, {"x", ""}, {strings.Repeat("n", koshin.MaxSettingNameLen+1), "x"},
		{"x", strings.Repeat("v", koshin.MaxSettingValueLen+1)}} {
		_, err := e.s.ClaimSetting(e.ctx, bad[0], bad[1])
		wantCode(t, err, koshin.EINVALID)
	}

	stores := []koshin.Store{e.s, e.s}
	if e.b.OpenPeer != nil {
		stores[1] = e.b.OpenPeer(t, e.s, e.clock.Now)
	}
	results := make([]string, 8)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := stores[i%2].ClaimSetting(e.ctx, "race", fmt.Sprint("replica-", i))
			if err != nil {
				t.Errorf("claim %d: %v", i, err)
			}
			results[i] = v
		}()
	}
	wg.Wait()
	for _, v := range results {
		if v != results[0] || v == "" {
			t.Fatalf("concurrent claims disagree: %q", results)
		}
	}
}
