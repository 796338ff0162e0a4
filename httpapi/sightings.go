package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/koshin-ota/koshin"
)

// maxKnownReports bounds the verified-report cache: about 100 bytes per
// device, so a fleet of this size costs tens of megabytes; past it,
// arbitrary entries make room and those devices pay one verification more.
const maxKnownReports = 1 << 20

// knownReports remembers, per device, the digest of the last signed report
// this server verified and stored. A device re-signs its report only when
// the report changes (deviceapi.CheckIn), so a check-in carrying the same
// report and signature again needs neither a signature verification nor an
// inventory write: only the device's last-seen time moves. The cache is
// per process; another replica simply verifies once more.
type knownReports struct {
	mu sync.Mutex
	m  map[string][32]byte
}

// reportSum identifies a signed report: its bytes and the signature.
func reportSum(report, sig []byte) [32]byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(report)))
	h.Write(n[:])
	h.Write(report)
	h.Write(sig)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

func (k *knownReports) has(id string, sum [32]byte) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	got, ok := k.m[id]
	return ok && got == sum
}

func (k *knownReports) remember(id string, sum [32]byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string][32]byte{}
	}
	if _, ok := k.m[id]; !ok && len(k.m) >= maxKnownReports {
		for victim := range k.m {
			delete(k.m, victim)
			break
		}
	}
	k.m[id] = sum
}

// sightings coalesces the last-seen times of check-ins that changed
// nothing else, so that a busy fleet costs one store transaction per flush
// instead of one per check-in (as hawkBit's lazy poll persistence does).
// Until RunSightings runs, every sighting is written at once.
type sightings struct {
	running atomic.Bool
	mu      sync.Mutex
	pending map[string]time.Time
}

// touch records that device id checked in at now.
func (s *Server) touch(ctx context.Context, id string, now time.Time) error {
	if !s.sightings.running.Load() {
		return s.Store.TouchDevice(ctx, id, now)
	}
	s.sightings.mu.Lock()
	defer s.sightings.mu.Unlock()
	if s.sightings.pending == nil {
		s.sightings.pending = map[string]time.Time{}
	}
	if now.After(s.sightings.pending[id]) {
		s.sightings.pending[id] = now
	}
	return nil
}

// RunSightings writes coalesced last-seen times every interval until ctx
// ends, then once more. A crash loses at most one interval of last-seen
// times, never a report: changed reports are written before the check-in
// is answered.
func (s *Server) RunSightings(ctx context.Context, every time.Duration) {
	s.sightings.running.Store(true)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.sightings.running.Store(false)
			// The store outlives ctx: write what is left.
			s.flushSightings(context.WithoutCancel(ctx))
			return
		case <-t.C:
			s.flushSightings(ctx)
		}
	}
}

// flushSightings writes the pending sightings in batches; a batch the
// store refused goes back to be retried at the next flush.
func (s *Server) flushSightings(ctx context.Context) {
	s.sightings.mu.Lock()
	pending := s.sightings.pending
	s.sightings.pending = nil
	s.sightings.mu.Unlock()
	ids := slices.Sorted(maps.Keys(pending))
	for batch := range slices.Chunk(ids, koshin.MaxTouchBatch) {
		seen := make([]koshin.Sighting, len(batch))
		for i, id := range batch {
			seen[i] = koshin.Sighting{DeviceID: id, At: pending[id]}
		}
		if _, err := s.Store.TouchDevices(ctx, seen); err != nil {
			s.Log.Warn("recording check-in times failed; retrying at the next flush", "devices", len(seen), "err", err)
			for _, v := range seen {
				s.touch(ctx, v.DeviceID, v.At)
			}
		}
	}
}
