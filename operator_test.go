package koshin_test

import (
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

func TestLockoutDelay(t *testing.T) {
	p := koshin.LockoutPolicy{FreeAttempts: 3, BaseDelay: time.Second, MaxDelay: 10 * time.Second}
	want := []time.Duration{0, 0, 0, 1, 2, 4, 8, 10, 10}
	for failures, w := range want {
		if got := p.Delay(failures); got != w*time.Second {
			t.Errorf("Delay(%d) = %v, want %v", failures, got, w*time.Second)
		}
	}
	if d := koshin.DefaultLockoutPolicy.Delay(1 << 30); d != koshin.DefaultLockoutPolicy.MaxDelay {
		t.Errorf("huge failure count: %v", d)
	}
	if err := koshin.DefaultLockoutPolicy.Validate(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, koshin.LockoutPolicy{FreeAttempts: 0, BaseDelay: 1, MaxDelay: 1}.Validate(), koshin.EINVALID)
	wantCode(t, koshin.LockoutPolicy{FreeAttempts: 3, BaseDelay: 2, MaxDelay: 1}.Validate(), koshin.EINVALID)
}

func TestRoleCovers(t *testing.T) {
	tests := []struct {
		r, other koshin.Role
		want     bool
	}{
		{koshin.RoleAdmin, koshin.RoleAuditor, true},
		{koshin.RoleOperator, koshin.RoleOperator, true},
		{koshin.RoleOperator, koshin.RoleViewer, true},
		{koshin.RoleOperator, koshin.RoleAdmin, false},
		{koshin.RoleViewer, koshin.RoleOperator, false},
		{koshin.RoleAuditor, koshin.RoleReleaseManager, false},
		{"root", "root", false},
	}
	for _, tt := range tests {
		if got := tt.r.Covers(tt.other); got != tt.want {
			t.Errorf("%s covers %s = %v, want %v", tt.r, tt.other, got, tt.want)
		}
	}
}

func TestOperatorValidate(t *testing.T) {
	ok := koshin.Operator{Name: "alice", Role: koshin.RoleAdmin, PasswordHash: "$argon2id$..."}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, mutate := range []func(*koshin.Operator){
		func(o *koshin.Operator) { o.Name = "" },
		func(o *koshin.Operator) { o.Role = "root" },
		func(o *koshin.Operator) { o.PasswordHash = "" },
		func(o *koshin.Operator) { o.TOTPSecret = []byte("short") },
	} {
		o := ok
		mutate(&o)
		wantCode(t, o.Validate(), koshin.EINVALID)
	}
	if o := (koshin.Operator{LockedUntil: time.Unix(100, 0)}); !o.Locked(time.Unix(99, 0)) || o.Locked(time.Unix(100, 0)) {
		t.Error("Locked boundary wrong")
	}
}
