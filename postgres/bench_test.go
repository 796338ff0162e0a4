package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/postgres"
	"github.com/koshin-ota/koshin/storetest"
)

// The benchmarks mirror sqlite/bench_test.go so the two stores' figures in
// docs/scale-out.md compare like for like:
//
//	KOSHIN_TEST_PG=… go test -run '^$' -bench . -benchtime 5s ./postgres

// benchFleet opens a store on a fresh database holding n devices and
// returns their IDs.
func benchFleet(b *testing.B, n int) (*postgres.DB, []string) {
	s := MustOpen(b, time.Now)
	ctx := context.Background()
	ids := make([]string, n)
	for i := range n {
		d := storetest.NewDevice(b, fmt.Sprintf("SN-%06d", i), "board-a")
		if err := s.CreateDevice(ctx, d); err != nil {
			b.Fatal(err)
		}
		ids[i] = d.ID
	}
	return s, ids
}

// BenchmarkCheckIn measures the store calls of one device check-in: find
// the device, mark it seen, look up its active assignment; one request at
// a time, so ns/op is the round-trip latency of three statements.
func BenchmarkCheckIn(b *testing.B) {
	s, ids := benchFleet(b, 1000)
	ctx := context.Background()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		checkIn(b, s, ctx, ids[i%len(ids)])
		i++
	}
}

// BenchmarkCheckInParallel is the same with concurrent requests, as the
// HTTP server issues them (GOMAXPROCS goroutines, as for SQLite).
func BenchmarkCheckInParallel(b *testing.B) {
	s, ids := benchFleet(b, 1000)
	benchParallel(b, []koshin.Store{s}, ids, 1)
}

// BenchmarkCheckInConcurrent16 keeps 16 requests in flight: PostgreSQL
// work happens in other processes, so throughput grows with concurrency
// until the server's CPUs are busy.
func BenchmarkCheckInConcurrent16(b *testing.B) {
	s, ids := benchFleet(b, 1000)
	benchParallel(b, []koshin.Store{s}, ids, 16)
}

// BenchmarkCheckInTwoReplicas spreads the 16 requests in flight over two
// stores with their own pools, as two server replicas behind a load
// balancer on one host.
func BenchmarkCheckInTwoReplicas(b *testing.B) {
	s, ids := benchFleet(b, 1000)
	peer := openDSN(b, s.DSN, time.Now)
	benchParallel(b, []koshin.Store{s, peer}, ids, 16)
}

// benchParallel runs check-ins from perCPU×GOMAXPROCS goroutines, assigned
// round-robin to the stores.
func benchParallel(b *testing.B, stores []koshin.Store, ids []string, perCPU int) {
	ctx := context.Background()
	var next atomic.Int64
	b.SetParallelism(perCPU)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := next.Add(1)
		s := stores[int(g)%len(stores)]
		i := int(g) * 97
		for pb.Next() {
			checkIn(b, s, ctx, ids[i%len(ids)])
			i++
		}
	})
}

func checkIn(b *testing.B, s koshin.Store, ctx context.Context, id string) {
	if _, err := s.FindDeviceByID(ctx, id); err != nil {
		b.Fatal(err)
	}
	if err := s.TouchDevice(ctx, id, time.Now()); err != nil {
		b.Fatal(err)
	}
	if _, err := s.FindActiveAssignment(ctx, id); koshin.ErrorCode(err) != koshin.ENOTFOUND {
		b.Fatal(err)
	}
}

// BenchmarkTouchDevice is one "seen" update per check-in, one at a time.
func BenchmarkTouchDevice(b *testing.B) {
	s, ids := benchFleet(b, 1000)
	ctx := context.Background()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if err := s.TouchDevice(ctx, ids[i%len(ids)], time.Now()); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkTouchDevicesBatch is the coalesced alternative to one
// TouchDevice per check-in: ns/op is per device sighting, in batches of 500.
func BenchmarkTouchDevicesBatch(b *testing.B) {
	s, ids := benchFleet(b, 1000)
	ctx := context.Background()
	const batch = 500
	seen := make([]koshin.Sighting, batch)
	b.ResetTimer()
	i := 0
	for b.Loop() {
		seen[i%batch] = koshin.Sighting{DeviceID: ids[i%len(ids)], At: time.Now()}
		i++
		if i%batch == 0 {
			if _, err := s.TouchDevices(ctx, seen); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkFootprint measures the database space a fleet takes, for
// sizing: bytes per device (row, tags, indexes), per stored event, per
// inventory report and per assignment with its plan row. It builds one
// fleet whatever b.N is; run it with -benchtime 1x.
func BenchmarkFootprint(b *testing.B) {
	const n = 2000
	s := MustOpen(b, time.Now)
	ctx, now := context.Background(), time.Now()
	must(b, s.CreateRelease(ctx, storetest.NewRelease("rootfs-2.img", 2, "board-a")))
	for i := range n {
		d := storetest.NewDevice(b, fmt.Sprintf("SN-%06d", i), "board-a")
		d.Group, d.Tags = "plant-7", []string{"region=eu", "line-2"}
		d.Inventory.Components = append(d.Inventory.Components,
			koshin.Component{Name: "app", Version: "3.2.1", ReleaseCounter: 12, Target: "app-3.2.1.tar"},
			koshin.Component{Name: "bootloader", Version: "2024.01", ReleaseCounter: 3})
		d.Inventory.AgentVersion = "koshin-agent/1.0.0"
		must(b, s.CreateDevice(ctx, d))
		inv := d.Inventory
		inv.Security.FailedVerifications = 1
		_, err := s.RecordDeviceReport(ctx, d.ID, inv, now)
		must(b, err)
	}
	r := storetest.NewRollout("rootfs-2.img", koshin.Phase{Percent: 100})
	must(b, s.CreateRollout(ctx, r))
	_, err := s.StartRollout(ctx, r.ID, now)
	must(b, err)
	var as []*koshin.Assignment
	for len(as) < n {
		got, err := s.AssignNext(ctx, r.ID, 0, koshin.MaxLimit, now)
		must(b, err)
		as = append(as, got...)
	}
	events := []koshin.EventType{koshin.EventDownloading, koshin.EventDownloaded, koshin.EventInstalling, koshin.EventRebooting, koshin.EventCommitted}
	for _, a := range as {
		for i, typ := range events {
			_, err := s.RecordEvent(ctx, &koshin.Event{DeviceID: a.DeviceID, EventID: fmt.Sprintf("%d-%d", a.ID, i), Type: typ,
				ReleaseName: a.ReleaseName, DeviceTime: now}, now)
			must(b, err)
		}
	}
	raw := rawDB(b, s.DSN)
	size := func(tables ...string) float64 {
		var total int64
		for _, t := range tables {
			var sz int64
			must(b, raw.QueryRow(`SELECT pg_total_relation_size($1::regclass)`, t).Scan(&sz))
			total += sz
		}
		return float64(total)
	}
	for b.Loop() {
	}
	b.ReportMetric(size("devices", "device_tags")/n, "B/device")
	b.ReportMetric(size("device_reports")/n, "B/report")
	b.ReportMetric(size("events")/(float64(len(events))*n), "B/event")
	b.ReportMetric(size("assignments", "rollout_members")/n, "B/assignment")
	b.ReportMetric(0, "ns/op")
}
