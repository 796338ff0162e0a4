package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
	"github.com/koshin-ota/koshin/storetest"
)

// benchFleet opens a store holding n devices and returns their IDs.
func benchFleet(b *testing.B, n int) (koshin.Store, []string) {
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
// the device, mark it seen, look up its active assignment. It is the
// baseline for the server's check-ins-per-second figure in
// docs/benchmarks.md (go test -run '^$' -bench CheckIn ./sqlite).
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
// HTTP server issues them: reads spread over the pool, writes queue on the
// single writer.
func BenchmarkCheckInParallel(b *testing.B) {
	s, ids := benchFleet(b, 1000)
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
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
