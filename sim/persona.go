package sim

import (
	"math"
	"math/rand/v2"
)

// persona is what the scenario makes of one device.
type persona struct {
	healthFail bool // the new image fails its health check here
	bootFail   bool // the new image never comes up here
	postpone   bool // the user postpones consent-mode offers
	decline    bool // the user declines consent-mode offers
}

// Personas is how many devices the scenario gave each role.
type Personas struct {
	HealthFail int `json:"health_fail"`
	BootFail   int `json:"boot_fail"`
	Postpone   int `json:"postpone"`
	Decline    int `json:"decline"`
}

// assignPersonas gives each share of the scenario to round(share·n)
// devices, disjoint, chosen by a permutation drawn from seed.
func assignPersonas(s Scenario, n int, seed uint64) ([]persona, Personas) {
	ps := make([]persona, n)
	perm := rand.New(rand.NewPCG(seed, 0x5eed)).Perm(n)
	var got Personas
	next := 0
	take := func(share float64, set func(*persona)) int {
		k := min(int(math.Round(share*float64(n))), n-next)
		for _, i := range perm[next : next+k] {
			set(&ps[i])
		}
		next += k
		return k
	}
	got.HealthFail = take(s.HealthFail, func(p *persona) { p.healthFail = true })
	got.BootFail = take(s.BootFail, func(p *persona) { p.bootFail = true })
	got.Postpone = take(s.Postpone, func(p *persona) { p.postpone = true })
	got.Decline = take(s.Decline, func(p *persona) { p.decline = true })
	return ps, got
}
