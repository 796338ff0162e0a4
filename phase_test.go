package koshin_test

import (
	"slices"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

func pct(ps ...float64) []koshin.Phase {
	out := make([]koshin.Phase, len(ps))
	for i, p := range ps {
		out[i] = koshin.Phase{Percent: p}
	}
	return out
}

func TestPhaseSizes(t *testing.T) {
	tests := []struct {
		name   string
		phases []koshin.Phase
		n      int
		want   []int
	}{
		{"classic 1000", pct(1, 10, 50, 100), 1000, []int{10, 90, 400, 500}},
		{"canary rounds up to one", pct(1, 10, 50, 100), 40, []int{1, 3, 16, 20}},
		{"half rounds up", pct(1, 100), 150, []int{2, 148}},
		{"below half rounds down", pct(1, 100), 149, []int{1, 148}},
		{"tiny fleet", pct(1, 10, 50, 100), 1, []int{1, 0, 0, 0}},
		{"empty fleet", pct(1, 100), 0, []int{0, 0}},
		{"two decimals", pct(0.25, 100), 10000, []int{25, 9975}},
		{"partial coverage", pct(5, 20), 100, []int{5, 15}},
		{"counts", []koshin.Phase{{Count: 5}, {Count: 50}, {Percent: 100}}, 1000, []int{5, 45, 950}},
		{"count beyond fleet", []koshin.Phase{{Count: 5}, {Count: 50}}, 20, []int{5, 15}},
		{"percent below earlier count adds nothing", []koshin.Phase{{Count: 30}, {Percent: 10}, {Percent: 100}}, 100, []int{30, 0, 70}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := koshin.PhaseSizes(tt.phases, tt.n)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("PhaseSizes = %v, want %v", got, tt.want)
			}
			sum := 0
			for _, s := range got {
				sum += s
			}
			if sum > tt.n {
				t.Fatalf("sizes sum to %d > %d", sum, tt.n)
			}
		})
	}
}

func TestPhaseValidate(t *testing.T) {
	bad := []koshin.Phase{
		{}, {Percent: 10, Count: 1}, {Percent: -1}, {Percent: 100.5}, {Percent: 0.125},
		{Count: -3}, {Count: 5, Soak: -time.Second}, {Count: 5, Soak: koshin.MaxSoak + 1},
		{Count: 5, Threshold: &koshin.Threshold{}},
	}
	for _, p := range bad {
		wantCode(t, p.Validate(), koshin.EINVALID)
	}
	if err := (&koshin.Phase{Percent: 12.5, Soak: time.Hour, Manual: true}).Validate(); err != nil {
		t.Fatal(err)
	}
}
