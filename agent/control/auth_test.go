package control_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin/agent/control"
	"github.com/koshin-ota/koshin/deviceapi"
)

// Only root, configured UIDs and configured primary GIDs may use the
// socket, and only with the token (CCDS STS12, EN 303 645 5.5-5).
func TestSocketAuth(t *testing.T) {
	f := newFixture(t, 10)
	ctx := context.Background()
	good := f.client()
	for _, tc := range []struct {
		cred control.Cred
		tok  string
		code int
	}{
		{control.Cred{UID: 0, GID: 0}, good.Token, http.StatusOK},
		{control.Cred{UID: 1000, GID: 1000}, good.Token, http.StatusOK},
		{control.Cred{UID: 1001, GID: 500}, good.Token, http.StatusOK},
		{control.Cred{UID: 1001, GID: 1001}, good.Token, http.StatusForbidden},
		{control.Cred{UID: 1002, GID: 1002}, good.Token, http.StatusForbidden},
		{control.Cred{UID: 0}, "", http.StatusUnauthorized},
		{control.Cred{UID: 0}, strings.Repeat("A", 43), http.StatusUnauthorized},
		{control.Cred{UID: 1000}, good.Token + "x", http.StatusUnauthorized},
	} {
		f.setCred(tc.cred)
		c := control.NewClient(f.socket, tc.tok)
		_, err := c.Status(ctx)
		if tc.code == http.StatusOK {
			if err != nil {
				t.Errorf("uid %d gid %d: %v, want access", tc.cred.UID, tc.cred.GID, err)
			}
			continue
		}
		var ae *control.APIError
		if !asAPI(err, &ae) || ae.Code != tc.code {
			t.Errorf("uid %d gid %d token %q: %v, want %d", tc.cred.UID, tc.cred.GID, tc.tok, err, tc.code)
		}
	}
}

func asAPI(err error, ae **control.APIError) bool {
	e, ok := err.(*control.APIError)
	*ae = e
	return ok
}

// Repeated failures lock the UID out, for longer each time (CCDS STS13);
// lockouts are counted in the security state and reported; other UIDs
// keep working.
func TestLockoutGrows(t *testing.T) {
	f := newFixture(t, 11)
	ctx := context.Background()
	f.setCred(control.Cred{UID: 1000})
	bad := control.NewClient(f.socket, strings.Repeat("B", 43))
	fail := func(n int) {
		t.Helper()
		for range n {
			_, err := bad.Status(ctx)
			wantCode(t, err, http.StatusUnauthorized)
		}
	}
	locked := func() time.Duration {
		t.Helper()
		_, err := f.client().Status(ctx) // even the right token is refused
		var ae *control.APIError
		if !asAPI(err, &ae) || ae.Code != http.StatusTooManyRequests {
			t.Fatalf("during lockout: %v, want 429", err)
		}
		return ae.RetryAfter
	}
	fail(control.DefaultMaxFailures)
	first := locked()
	if first < control.DefaultLockoutBase || first > control.DefaultLockoutBase+time.Second {
		t.Fatalf("first lockout %s, want %s", first, control.DefaultLockoutBase)
	}

	// Root is not locked out by another UID's failures.
	f.setCred(control.Cred{UID: 0})
	st, err := f.client().Status(ctx)
	if err != nil {
		t.Fatalf("root during uid 1000's lockout: %v", err)
	}
	if st.Security.Lockouts != 1 {
		t.Fatalf("security state %+v, want one lockout", st.Security)
	}

	f.setCred(control.Cred{UID: 1000})
	f.r.Clock.Advance(first)
	fail(control.DefaultMaxFailures)
	if second := locked(); second < 2*control.DefaultLockoutBase {
		t.Fatalf("second lockout %s, want at least %s", second, 2*control.DefaultLockoutBase)
	}

	f.setCred(control.Cred{UID: 0})
	f.poll()
	if n := f.count(deviceapi.EventLockout); n != 2 {
		t.Fatalf("server got %v, want two lockout reports", f.events())
	}
	reps := f.r.Server.Reports()
	if got := reps[len(reps)-1].Security.Lockouts; got != 2 {
		t.Fatalf("check-in report lockouts %d, want 2", got)
	}
}

// The lockout count survives a restart of the API.
func TestLockoutCountPersists(t *testing.T) {
	f := newFixture(t, 12)
	f.setCred(control.Cred{UID: 1000})
	bad := control.NewClient(f.socket, strings.Repeat("C", 43))
	for range control.DefaultMaxFailures {
		bad.Status(context.Background())
	}
	f.api.Close()
	f.start()
	if got := f.api.Lockouts(); got != 1 {
		t.Fatalf("lockouts after restart %d, want 1", got)
	}
}

func TestTokenFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	tok, err := control.LoadOrCreateToken(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if len(tok) != 43 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token %q mode %v, want 43 characters in a 0600 file", tok, fi.Mode())
	}
	again, err := control.LoadOrCreateToken(p)
	if err != nil || again != tok {
		t.Fatalf("token changed on reload: %v", err)
	}
	other, _ := control.LoadOrCreateToken(filepath.Join(t.TempDir(), "token"))
	if other == tok {
		t.Fatal("two devices got the same token")
	}
	os.Chmod(p, 0o644)
	if _, err := control.LoadOrCreateToken(p); err == nil {
		t.Fatal("accepted a token file others can read")
	}
}

func TestListenSocketMode(t *testing.T) {
	dir, err := os.MkdirTemp("", "kc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "run", "agent.sock")
	for range 2 { // the second time replaces the stale socket
		ln, err := control.Listen(p, -1)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o660 || fi.Mode().Type() != os.ModeSocket {
			t.Fatalf("socket mode %v, %v; want a 0660 socket", fi.Mode(), err)
		}
		// Keep the file as a crash would leave it.
		ln.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
		ln.Close()
	}
	regular := filepath.Join(dir, "file")
	os.WriteFile(regular, nil, 0o600)
	if _, err := control.Listen(regular, -1); err == nil {
		t.Fatal("replaced a regular file with the socket")
	}
}
