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
