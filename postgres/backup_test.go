package postgres_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/storetest"
)

// TestBackupRestore: a pg_dump of a live store restores into an empty
// database as a working store: the audit chain verifies with the same
// head, assignments and their constraints are back, the append-only
// triggers are back, and sequences continue without collisions. This is
// the procedure docs/scale-out.md gives for logical backups.
func TestBackupRestore(t *testing.T) {
	needPG(t)
	dump, err := exec.LookPath("pg_dump")
	if err != nil {
		t.Skip("pg_dump not installed")
	}
	restore, err := exec.LookPath("pg_restore")
	if err != nil {
		t.Skip("pg_restore not installed")
	}
	ctx, now := context.Background(), time.Now()
	src := MustOpen(t, time.Now)
	d1, d2 := storetest.NewDevice(t, "SN-1", "board-a"), storetest.NewDevice(t, "SN-2", "board-a")
	must(t, src.CreateDevice(ctx, d1))
	must(t, src.CreateDevice(ctx, d2))
	must(t, src.CreateRelease(ctx, storetest.NewRelease("a.img", 2, "board-a")))
	r := storetest.NewRollout("a.img", koshin.Phase{Percent: 100})
	must(t, src.CreateRollout(ctx, r))
	_, err = src.StartRollout(ctx, r.ID, now)
	must(t, err)
	as, err := src.AssignNext(ctx, r.ID, 0, 1, now)
	must(t, err)
	_, err = src.RecordEvent(ctx, &koshin.Event{DeviceID: as[0].DeviceID, EventID: "e1", Type: koshin.EventDownloading, ReleaseName: "a.img"}, now)
	must(t, err)
	for _, action := range []string{"device.create", "rollout.start", "rollout.assign"} {
		must(t, src.AppendAudit(ctx, &koshin.AuditEntry{Principal: "operator:alice", Action: action, Result: koshin.AuditOK}))
	}
	head, err := src.VerifyAudit(ctx)
	must(t, err)

	file := filepath.Join(t.TempDir(), "koshin.dump")
	run(t, dump, "--format=custom", "--file="+file, "--dbname="+src.DSN)
	dstDSN := createDB(t, "")
	run(t, restore, "--no-owner", "--exit-on-error", "--dbname="+dstDSN, file)

	dst := openDSN(t, dstDSN, time.Now)
	got, err := dst.VerifyAudit(ctx)
	must(t, err)
	if got.Seq != head.Seq || !bytes.Equal(got.Hash, head.Hash) {
		t.Fatalf("restored audit head %+v, want %+v", got, head)
	}
	a, err := dst.FindActiveAssignment(ctx, as[0].DeviceID)
	must(t, err)
	if a.ID != as[0].ID || a.State != koshin.AssignmentDownloading {
		t.Fatalf("restored assignment %+v", a)
	}
	more, err := dst.AssignNext(ctx, r.ID, 0, 10, now)
	must(t, err)
	if len(more) != 1 || more[0].ID <= as[0].ID {
		t.Fatalf("assignments after restore %+v: sequence did not continue", more)
	}
	must(t, dst.AppendAudit(ctx, &koshin.AuditEntry{Principal: "system", Action: "backup.restore", Result: koshin.AuditOK}))
	if _, err := rawDB(t, dstDSN).Exec(`DELETE FROM audit_log`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("append-only trigger not restored: %v", err)
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", filepath.Base(name), err, out)
	}
}
