package koshin_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/koshin-ota/koshin"
)

// fleet returns candidates with the given stratum sizes.
func fleet(sizes map[string]int) []koshin.Candidate {
	var out []koshin.Candidate
	for s, n := range sizes {
		for i := range n {
			out = append(out, koshin.Candidate{DeviceID: fmt.Sprintf("%s-%04d", s, i), Stratum: s})
		}
	}
	return out
}

func countStrata(cs []koshin.Candidate) map[string]int {
	m := map[string]int{}
	for _, c := range cs {
		m[c.Stratum]++
	}
	return m
}

func TestStratifiedSampleProportional(t *testing.T) {
	cands := fleet(map[string]int{"board-a|eu": 700, "board-a|us": 200, "board-b|eu": 100})
	picked, rest := koshin.StratifiedSample(cands, 10, koshin.NewRand(1))
	want := map[string]int{"board-a|eu": 7, "board-a|us": 2, "board-b|eu": 1}
	if got := countStrata(picked); !reflect.DeepEqual(got, want) {
		t.Fatalf("allocation = %v, want %v", got, want)
	}
	if len(picked)+len(rest) != len(cands) {
		t.Fatalf("picked %d + rest %d != %d", len(picked), len(rest), len(cands))
	}
}

// TestStratifiedSampleQuotaBounds: every stratum gets its proportional share
// rounded down or up, never more or less, for random fleets and sizes.
func TestStratifiedSampleQuotaBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for iter := range 300 {
		sizes := map[string]int{}
		for s := range 1 + r.IntN(8) {
			sizes[fmt.Sprintf("s%d", s)] = 1 + r.IntN(50)
		}
		cands := fleet(sizes)
		n := r.IntN(len(cands) + 2)
		picked, _ := koshin.StratifiedSample(cands, n, koshin.NewRand(int64(iter)))
		if len(picked) != min(n, len(cands)) {
			t.Fatalf("picked %d of %d, want %d", len(picked), len(cands), min(n, len(cands)))
		}
		got := countStrata(picked)
		for s, size := range sizes {
			lo := size * min(n, len(cands)) / len(cands)
			if got[s] < lo || got[s] > lo+1 {
				t.Fatalf("stratum %s (%d of %d) got %d of %d, want %d or %d", s, size, len(cands), got[s], n, lo, lo+1)
			}
		}
	}
}

func TestStratifiedSampleDeterministic(t *testing.T) {
	cands := fleet(map[string]int{"a": 30, "b": 20, "c": 7})
	shuffled := append([]koshin.Candidate(nil), cands...)
	rand.New(rand.NewPCG(3, 3)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	p1, _ := koshin.StratifiedSample(cands, 12, koshin.NewRand(42))
	p2, _ := koshin.StratifiedSample(shuffled, 12, koshin.NewRand(42))
	if !reflect.DeepEqual(p1, p2) {
		t.Fatal("same seed and candidate set gave different samples")
	}
	p3, _ := koshin.StratifiedSample(cands, 12, koshin.NewRand(43))
	if reflect.DeepEqual(p1, p3) {
		t.Fatal("different seeds gave the same sample")
	}
}

func TestPlanPhases(t *testing.T) {
	cands := fleet(map[string]int{"a": 600, "b": 300, "c": 100})
	sizes := koshin.PhaseSizes(pct(1, 10, 50, 100), len(cands))
	members := koshin.PlanPhases(cands, sizes, 9)
	if len(members) != len(cands) {
		t.Fatalf("planned %d of %d", len(members), len(cands))
	}
	seen := map[string]bool{}
	perPhase := make([]int, len(sizes))
	for _, m := range members {
		if seen[m.DeviceID] {
			t.Fatalf("device %s planned twice", m.DeviceID)
		}
		seen[m.DeviceID] = true
		if m.Rank != perPhase[m.Phase] {
			t.Fatalf("phase %d ranks not consecutive", m.Phase)
		}
		perPhase[m.Phase]++
	}
	if !reflect.DeepEqual(perPhase, sizes) {
		t.Fatalf("phase sizes %v, want %v", perPhase, sizes)
	}
	if again := koshin.PlanPhases(cands, sizes, 9); !reflect.DeepEqual(again, members) {
		t.Fatal("plan not reproducible for its seed")
	}
}

func TestStratum(t *testing.T) {
	d := MustDevice(t, "SN-1", "board-a")
	d.Tags = []string{"line-2", "region=eu"}
	if got := koshin.Stratum(d, []string{"region=us", "region=eu"}); got != "board-a|region=eu" {
		t.Fatalf("Stratum = %q", got)
	}
}
