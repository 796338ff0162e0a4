package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/storetest"
)

// TestAssignMembersSkipsConflicts exercises the guard that matters when
// another writer assigns a device between AssignNext's SELECT and INSERT
// (two replicas on PostgreSQL): the INSERT hits the one-active-assignment
// index, is skipped, and the device stays planned for later.
func TestAssignMembersSkipsConflicts(t *testing.T) {
	ctx, now := context.Background(), time.Now()
	db := NewDB(filepath.Join(t.TempDir(), "koshin.db"))
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	busy, free := storetest.NewDevice(t, "SN-1", "board-a"), storetest.NewDevice(t, "SN-2", "board-a")
	for _, d := range []*koshin.Device{busy, free} {
		if err := db.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"a.img", "b.img"} {
		if err := db.CreateRelease(ctx, storetest.NewRelease(name, 2, "board-a")); err != nil {
			t.Fatal(err)
		}
	}
	r1 := storetest.NewRollout("a.img", koshin.Phase{Percent: 100})
	r1.Selector = koshin.Selector{DeviceIDs: []string{busy.ID}}
	r2 := storetest.NewRollout("b.img", koshin.Phase{Percent: 100})
	for _, r := range []*koshin.Rollout{r1, r2} {
		if err := db.CreateRollout(ctx, r); err != nil {
			t.Fatal(err)
		}
		if _, err := db.StartRollout(ctx, r.ID, now); err != nil {
			t.Fatal(err)
		}
	}
	if as, err := db.AssignNext(ctx, r1.ID, 0, 1, now); err != nil || len(as) != 1 {
		t.Fatalf("AssignNext = %v, %v", as, err)
	}
	r2, _ = db.FindRolloutByID(ctx, r2.ID)
	var got []*koshin.Assignment
	err := db.update(ctx, func(tx *sql.Tx) (err error) {
		got, err = assignMembers(ctx, tx, r2, []string{busy.ID, free.ID}, now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].DeviceID != free.ID {
		t.Fatalf("assigned %+v, want only the free device", got)
	}
	if s, _ := db.FindPhaseStats(ctx, r2.ID, 0, now); s.Unassigned != 1 {
		t.Fatalf("busy device not left planned: %+v", s)
	}
}

func TestMapError(t *testing.T) {
	if err := mapError(nil); err != nil {
		t.Fatal(err)
	}
	ke := koshin.Errorf(koshin.ENOTFOUND, "x")
	if mapError(ke) != ke {
		t.Fatal("domain error rewrapped")
	}
	if got := koshin.ErrorCode(mapError(sql.ErrConnDone)); got != koshin.EINTERNAL {
		t.Fatalf("code = %q", got)
	}
	if got := truncate("héllo", 2); got != "h" {
		t.Fatalf("truncate split a rune: %q", got)
	}
}
