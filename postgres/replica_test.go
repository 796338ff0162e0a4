package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/postgres"
	"github.com/koshin-ota/koshin/storetest"
)

// replicas opens n stores with their own pools on one fresh database, as
// n server replicas would.
func replicas(t *testing.T, n int, configure ...func(*postgres.DB)) []*postgres.DB {
	t.Helper()
	dsn := createDB(t, templateName)
	out := make([]*postgres.DB, n)
	for i := range out {
		out[i] = openDSN(t, dsn, time.Now, configure...)
	}
	return out
}

// TestAuditChainAcrossReplicas: appends from several replicas at once form
// one linear chain.
func TestAuditChainAcrossReplicas(t *testing.T) {
	rs := replicas(t, 3)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i, s := range rs {
		for j := range 15 {
			wg.Go(func() {
				e := &koshin.AuditEntry{Principal: fmt.Sprintf("replica:%d", i), Action: "test.append", Target: fmt.Sprint(j), Result: koshin.AuditOK}
				if err := s.AppendAudit(ctx, e); err != nil {
					t.Errorf("AppendAudit: %v", err)
				}
			})
		}
	}
	wg.Wait()
	head, err := rs[0].VerifyAudit(ctx)
	must(t, err)
	if head.Seq != 45 {
		t.Fatalf("head = %d, want 45", head.Seq)
	}
}

// TestDecommissionRacesAssignNext: replicas assign a rollout while others
// decommission its devices. However they interleave, no decommissioned
// device is left with an active assignment, and no device has two.
func TestDecommissionRacesAssignNext(t *testing.T) {
	rs := replicas(t, 2)
	ctx, now := context.Background(), time.Now()
	const n = 60
	var devs []*koshin.Device
	for i := range n {
		d := storetest.NewDevice(t, fmt.Sprintf("D-%03d", i), "board-a")
		must(t, rs[0].CreateDevice(ctx, d))
		devs = append(devs, d)
	}
	must(t, rs[0].CreateRelease(ctx, storetest.NewRelease("a.img", 2, "board-a")))
	r := storetest.NewRollout("a.img", koshin.Phase{Percent: 100})
	must(t, rs[0].CreateRollout(ctx, r))
	_, err := rs[0].StartRollout(ctx, r.ID, now)
	must(t, err)

	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			as, err := rs[0].AssignNext(ctx, r.ID, 0, 2, now)
			if err != nil {
				t.Errorf("AssignNext: %v", err)
				return
			}
			if len(as) == 0 {
				return
			}
		}
	})
	for i, d := range devs {
		if i%2 == 0 {
			wg.Go(func() {
				if _, err := rs[1].DecommissionDevice(ctx, d.ID, now); err != nil {
					t.Errorf("DecommissionDevice: %v", err)
				}
			})
		}
	}
	wg.Wait()
	var bad int
	must(t, rawDB(t, rs[0].DSN).QueryRow(`SELECT COUNT(*) FROM assignments a JOIN devices d ON d.id = a.device_id
		WHERE a.active AND d.status <> 'active'`).Scan(&bad))
	if bad != 0 {
		t.Fatalf("%d decommissioned devices kept an active assignment", bad)
	}
	s, err := rs[0].FindPhaseStats(ctx, r.ID, 0, now)
	must(t, err)
	if s.Unassigned != 0 || s.Members != n {
		t.Fatalf("stats after race %+v", s)
	}
}

// TestRetriedEventAcrossReplicas: a device's report retried to another
// replica while the first is still storing it is stored once; neither
// call fails.
func TestRetriedEventAcrossReplicas(t *testing.T) {
	rs := replicas(t, 4)
	ctx, now := context.Background(), time.Now()
	d := storetest.NewDevice(t, "SN-1", "board-a")
	must(t, rs[0].CreateDevice(ctx, d))
	for round := range 20 {
		var wg sync.WaitGroup
		created := make([]bool, len(rs))
		for i, s := range rs {
			wg.Go(func() {
				e := &koshin.Event{DeviceID: d.ID, EventID: fmt.Sprintf("ev-%d", round), Type: koshin.EventTamper, Detail: fmt.Sprint("replica ", i)}
				var err error
				created[i], err = s.RecordEvent(ctx, e, now)
				if err != nil {
					t.Errorf("RecordEvent: %v", err)
				}
			})
		}
		wg.Wait()
		won := 0
		for _, c := range created {
			if c {
				won++
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d replicas created the event", round, won)
		}
	}
}

// TestLastAdminAcrossReplicas: two administrators demoting each other on
// two replicas at once cannot leave the server without an administrator.
func TestLastAdminAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	viewer := koshin.RoleViewer
	for round := range 10 {
		rs := replicas(t, 2)
		for _, name := range []string{"alice", "bob"} {
			must(t, rs[0].CreateOperator(ctx, &koshin.Operator{Name: name, Role: koshin.RoleAdmin, PasswordHash: "$argon2id$x"}))
		}
		var wg sync.WaitGroup
		wg.Go(func() { rs[0].UpdateOperator(ctx, "alice", koshin.OperatorUpdate{Role: &viewer}) })
		wg.Go(func() { rs[1].UpdateOperator(ctx, "bob", koshin.OperatorUpdate{Role: &viewer}) })
		wg.Wait()
		admins, err := rs[0].FindOperators(ctx, koshin.OperatorFilter{Role: koshin.RoleAdmin})
		must(t, err)
		if len(admins) != 1 {
			t.Fatalf("round %d: %d administrators left, want 1", round, len(admins))
		}
	}
}

// TestTokenLimitAcrossReplicas: concurrent token creation on several
// replicas never exceeds the per-operator limit.
func TestTokenLimitAcrossReplicas(t *testing.T) {
	rs := replicas(t, 3)
	ctx := context.Background()
	must(t, rs[0].CreateOperator(ctx, &koshin.Operator{Name: "ci", Role: koshin.RoleOperator, PasswordHash: "$argon2id$x"}))
	var wg sync.WaitGroup
	for i := range koshin.MaxAPITokensPerOperator + 20 {
		s := rs[i%len(rs)]
		wg.Go(func() {
			tok := &koshin.APIToken{Operator: "ci", Name: "t", Role: koshin.RoleViewer,
				Hash: koshin.HashSecret(koshin.NewSecret()), ExpiresAt: time.Now().Add(time.Hour)}
			if err := s.CreateAPIToken(ctx, tok); err != nil && koshin.ErrorCode(err) != koshin.ETOOMANY {
				t.Errorf("CreateAPIToken: %v", err)
			}
		})
	}
	wg.Wait()
	toks, err := rs[0].FindAPITokens(ctx, "ci")
	must(t, err)
	if len(toks) != koshin.MaxAPITokensPerOperator {
		t.Fatalf("%d tokens, want exactly %d", len(toks), koshin.MaxAPITokensPerOperator)
	}
}

// holdRowLock locks the operator row name from a raw connection until the
// returned function is called.
func holdRowLock(t *testing.T, dsn, name string) (release func()) {
	t.Helper()
	tx, err := rawDB(t, dsn).BeginTx(context.Background(), nil)
	must(t, err)
	var got string
	must(t, tx.QueryRow(`SELECT name FROM operators WHERE name = $1 FOR UPDATE`, name).Scan(&got))
	var once sync.Once
	release = func() { once.Do(func() { tx.Rollback() }) }
	t.Cleanup(release)
	return release
}

// TestBusyIsUnavailable: a row lock held past LockTimeout on every attempt
// makes the call fail with EUNAVAILABLE (HTTP 503, retry later) after
// MaxAttempts tries, instead of hanging or reporting an internal error.
func TestBusyIsUnavailable(t *testing.T) {
	s := MustOpen(t, time.Now)
	ctx := context.Background()
	must(t, s.CreateOperator(ctx, &koshin.Operator{Name: "alice", Role: koshin.RoleAdmin, PasswordHash: "$argon2id$x"}))
	fast := openDSN(t, s.DSN, time.Now, func(db *postgres.DB) { db.LockTimeout, db.MaxAttempts = 50*time.Millisecond, 3 })
	release := holdRowLock(t, s.DSN, "alice")
	start := time.Now()
	_, err := fast.RecordLoginFailure(ctx, "alice", koshin.DefaultLockoutPolicy, time.Now())
	wantCode(t, err, koshin.EUNAVAILABLE)
	if d := time.Since(start); d < 150*time.Millisecond || d > 5*time.Second {
		t.Fatalf("gave up after %v; want about 3 lock timeouts", d)
	}
	release()
	o, err := fast.RecordLoginFailure(ctx, "alice", koshin.DefaultLockoutPolicy, time.Now())
	must(t, err)
	if o.FailedLogins != 1 {
		t.Fatalf("failed logins = %d: the refused attempts must not have counted", o.FailedLogins)
	}
}

// TestLockWaitIsRetried: a lock released while the store is retrying lets
// the call succeed, once.
func TestLockWaitIsRetried(t *testing.T) {
	s := MustOpen(t, time.Now)
	ctx := context.Background()
	must(t, s.CreateOperator(ctx, &koshin.Operator{Name: "alice", Role: koshin.RoleAdmin, PasswordHash: "$argon2id$x"}))
	patient := openDSN(t, s.DSN, time.Now, func(db *postgres.DB) { db.LockTimeout, db.MaxAttempts = 50*time.Millisecond, 40 })
	release := holdRowLock(t, s.DSN, "alice")
	time.AfterFunc(120*time.Millisecond, release)
	o, err := patient.RecordLoginFailure(ctx, "alice", koshin.DefaultLockoutPolicy, time.Now())
	must(t, err)
	if o.FailedLogins != 1 {
		t.Fatalf("failed logins = %d, want 1", o.FailedLogins)
	}
}

// TestMalformedTextIsInvalid: PostgreSQL text cannot hold NUL bytes or
// invalid UTF-8; such input is the caller's error, not the server's.
func TestMalformedTextIsInvalid(t *testing.T) {
	s := MustOpen(t, time.Now)
	ctx := context.Background()
	d := storetest.NewDevice(t, "SN-1", "board-a")
	must(t, s.CreateDevice(ctx, d))
	for _, detail := range []string{"a\x00b", "bad \xff utf-8"} {
		_, err := s.RecordEvent(ctx, &koshin.Event{DeviceID: d.ID, EventID: "e1", Type: koshin.EventTamper, Detail: detail}, time.Now())
		wantCode(t, err, koshin.EINVALID)
	}
	if evs, err := s.FindEvents(ctx, koshin.EventFilter{}); err != nil || len(evs) != 0 {
		t.Fatalf("events after refusals: %v, %v", evs, err)
	}
}

// TestByteOrder: keys sort byte-wise as in SQLite even in a database
// whose default collation is a natural-language one, so cursors page the
// same way on both stores.
func TestByteOrder(t *testing.T) {
	needPG(t)
	name := randomName("koshin_test_")
	if err := adminExec(`CREATE DATABASE ` + name + ` TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`); err != nil {
		t.Skipf("server cannot create an ICU en-US database: %v", err)
	}
	t.Cleanup(func() { dropDatabase(name) })
	dsn := dsnFor(name)
	raw := rawDB(t, dsn)
	var natural []string
	rows, err := raw.Query(`SELECT s FROM unnest(ARRAY['a-2', 'A-1', 'a.1', 'a1', 'B', 'b']) AS s ORDER BY s`)
	must(t, err)
	for rows.Next() {
		var s string
		must(t, rows.Scan(&s))
		natural = append(natural, s)
	}
	const want = "A-1 B a-2 a.1 a1 b"
	if strings.Join(natural, " ") == want {
		t.Fatal("the database's own collation is byte order; the test proves nothing")
	}
	s := openDSN(t, dsn, time.Now)
	ctx := context.Background()
	for _, name := range natural {
		must(t, s.CreateRelease(ctx, storetest.NewRelease(name+".img", 1, "board-a")))
	}
	var got []string
	f := koshin.ReleaseFilter{Limit: 2}
	for {
		page, err := s.FindReleases(ctx, f)
		must(t, err)
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			got = append(got, strings.TrimSuffix(r.Name, ".img"))
		}
		f.After = page[len(page)-1].Name
	}
	if strings.Join(got, " ") != want {
		t.Fatalf("releases listed %v, want byte order %q", got, want)
	}
}

// TestPoolUnderLoad: many concurrent check-ins through a small pool queue
// in database/sql instead of failing.
func TestPoolUnderLoad(t *testing.T) {
	s := MustOpen(t, time.Now)
	small := openDSN(t, s.DSN, time.Now, func(db *postgres.DB) { db.MaxConns = 2 })
	ctx := context.Background()
	d := storetest.NewDevice(t, "SN-1", "board-a")
	must(t, s.CreateDevice(ctx, d))
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if err := small.TouchDevice(ctx, d.ID, time.Now()); err != nil {
				t.Errorf("TouchDevice: %v", err)
			}
		})
	}
	wg.Wait()
	var open int
	must(t, rawDB(t, s.DSN).QueryRow(`SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()
		AND application_name = 'koshin'`).Scan(&open))
	if open > small.MaxConns+s.MaxConns {
		t.Fatalf("%d connections open, want at most %d", open, small.MaxConns+s.MaxConns)
	}
}
