package koshin

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strings"
)

// Candidate is a device eligible for a rollout, with the stratum it belongs
// to for sampling.
type Candidate struct {
	DeviceID string
	Stratum  string
}

// Member is a device's place in a rollout's plan: the phase that assigns it
// and its order within that phase.
type Member struct {
	DeviceID string `json:"device_id"`
	Phase    int    `json:"phase"`
	Rank     int    `json:"rank"`
}

// Stratum is d's stratum key: its hardware ID and which of the stratify tags
// it carries. Sampling across strata keeps a 1% canary from landing on one
// board revision or one region only.
func Stratum(d *Device, stratifyTags []string) string {
	var b strings.Builder
	b.WriteString(d.HardwareID)
	for _, t := range stratifyTags {
		if d.HasTag(t) {
			b.WriteByte('|')
			b.WriteString(t)
		}
	}
	return b.String()
}

// NewRand returns the generator sampling uses: seeded, so that a plan can be
// recomputed and explained. Stores persist plans, so a future change of the
// generator's algorithm would not move a running rollout's devices.
func NewRand(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x6b6f7368696e)) // "koshin"
}

// StratifiedSample draws n candidates (all of them if n ≥ len) by
// proportional allocation: each stratum gets its share of n rounded down,
// and the seats left go to the largest remainders, ties broken at random.
// Within a stratum devices are drawn at random. The result depends only on
// the set of candidates and the generator's state, not on their order. It
// returns the picked candidates in random order and the rest.
func StratifiedSample(cands []Candidate, n int, rng *rand.Rand) (picked, rest []Candidate) {
	strata := groupStrata(cands)
	quotas := allocate(strata, n, len(cands), rng)
	for i, s := range strata {
		rng.Shuffle(len(s), func(a, b int) { s[a], s[b] = s[b], s[a] })
		picked = append(picked, s[:quotas[i]]...)
		rest = append(rest, s[quotas[i]:]...)
	}
	rng.Shuffle(len(picked), func(a, b int) { picked[a], picked[b] = picked[b], picked[a] })
	slices.SortFunc(rest, compareCandidates)
	return picked, rest
}

func compareCandidates(a, b Candidate) int {
	return cmp.Or(cmp.Compare(a.Stratum, b.Stratum), cmp.Compare(a.DeviceID, b.DeviceID))
}

// groupStrata sorts a copy of cands and splits it into strata in key order.
func groupStrata(cands []Candidate) [][]Candidate {
	sorted := slices.Clone(cands)
	slices.SortFunc(sorted, compareCandidates)
	var strata [][]Candidate
	for len(sorted) > 0 {
		k := sorted[0].Stratum
		end := 1
		for end < len(sorted) && sorted[end].Stratum == k {
			end++
		}
		strata = append(strata, sorted[:end:end])
		sorted = sorted[end:]
	}
	return strata
}

// allocate returns each stratum's seats out of n by largest remainder.
func allocate(strata [][]Candidate, n, total int, rng *rand.Rand) []int {
	quotas := make([]int, len(strata))
	if total == 0 || n <= 0 {
		return quotas
	}
	n = min(n, total)
	rems := make([]int, len(strata)) // remainders scaled by total
	seated := 0
	for i, s := range strata {
		quotas[i] = len(s) * n / total
		rems[i] = len(s) * n % total
		seated += quotas[i]
	}
	order := rng.Perm(len(strata)) // random tie-break
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(rems[b], rems[a]) })
	for _, i := range order[:n-seated] {
		quotas[i]++
	}
	return quotas
}

// PlanPhases assigns every candidate that fits the phase sizes to a phase:
// phase i is a stratified sample of sizes[i] devices from those earlier
// phases left. Candidates beyond the sizes' sum are not planned.
func PlanPhases(cands []Candidate, sizes []int, seed int64) []Member {
	rng := NewRand(seed)
	var members []Member
	rest := cands
	for phase, size := range sizes {
		var picked []Candidate
		picked, rest = StratifiedSample(rest, size, rng)
		for rank, c := range picked {
			members = append(members, Member{DeviceID: c.DeviceID, Phase: phase, Rank: rank})
		}
	}
	return members
}
