package ui

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/koshin-ota/koshin"
)

// Charts are inline SVG drawn on the server: geometry is computed here and
// written by the templates (so every label is escaped), colours come from
// CSS classes, and every chart has a title, a description and a table with
// the same numbers for screen readers and for printing.

type chart struct {
	ID          string // prefix of the element ids
	W, H        int
	Title, Desc string
	Bars        []bar
	YTicks      []tick
	XTicks      []tick
	Legend      []legendItem
	PlotX       int // left edge of the plot
	PlotY       int // bottom edge of the plot
	PlotW       int
}

type bar struct {
	X, W     float64
	Segments []segment
}

type segment struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

type tick struct {
	X, Y   float64
	Label  string
	Anchor string // text-anchor: start, middle or end
}

type legendItem struct {
	Label string
	Class string
	N     int
}

// f formats a coordinate for SVG.
func f(v float64) string { return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64) }

// versionChart draws the versions-over-time stacked columns.
func versionChart(h *versionHistory) *chart {
	c := &chart{ID: "versions", W: 760, H: 260, PlotX: 44, PlotY: 220, PlotW: 700,
		Title: "Installed versions over time",
		Desc: fmt.Sprintf("Stacked columns: devices per installed version, %d samples from %s to %s.",
			len(h.Times), h.Start.UTC().Format("2006-01-02 15:04"), h.At.UTC().Format("2006-01-02 15:04 MST"))}
	for i, s := range h.Series {
		c.Legend = append(c.Legend, legendItem{Label: s.Label, Class: "s" + strconv.Itoa(i), N: s.Counts[len(s.Counts)-1]})
	}
	top := niceMax(h.Max)
	plotH := 200.0
	slot := float64(c.PlotW) / float64(len(h.Times))
	for i, t := range h.Times {
		b := bar{X: float64(c.PlotX) + float64(i)*slot + slot*0.1, W: slot * 0.8}
		y := float64(c.PlotY)
		for j, s := range h.Series {
			n := s.Counts[i]
			if n == 0 {
				continue
			}
			hh := float64(n) / float64(top) * plotH
			y -= hh
			b.Segments = append(b.Segments, segment{X: b.X, Y: y, W: b.W, H: hh, Class: "s" + strconv.Itoa(j),
				Title: fmt.Sprintf("%s: %d devices at %s", s.Label, n, t.UTC().Format("2006-01-02 15:04"))})
		}
		c.Bars = append(c.Bars, b)
	}
	for _, v := range []int{0, top / 2, top} {
		c.YTicks = append(c.YTicks, tick{X: float64(c.PlotX) - 6, Y: float64(c.PlotY) - float64(v)/float64(top)*plotH, Label: strconv.Itoa(v)})
	}
	for j, i := range []int{0, len(h.Times) / 2, len(h.Times) - 1} {
		x, anchor := float64(c.PlotX)+(float64(i)+0.5)*slot, "middle"
		switch j {
		case 0:
			x, anchor = float64(c.PlotX), "start"
		case 2:
			x, anchor = float64(c.PlotX+c.PlotW), "end"
		}
		c.XTicks = append(c.XTicks, tick{X: x, Y: float64(c.PlotY) + 18, Label: timeLabel(h.Times[i], h.At.Sub(h.Start)), Anchor: anchor})
	}
	return c
}

func timeLabel(t time.Time, span time.Duration) string {
	if span <= 48*time.Hour {
		return t.UTC().Format("Jan 2 15:04")
	}
	return t.UTC().Format("Jan 2")
}

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
func niceMax(n int) int {
	if n <= 2 {
		return 2
	}
	p := int(math.Pow(10, math.Floor(math.Log10(float64(n)))))
	for _, m := range []int{1, 2, 5, 10} {
		if m*p >= n {
			return m * p
		}
	}
	return n
}

// phaseCounts are one phase's devices by outcome, as the progress chart
// shows them.
type phaseCounts struct {
	Phase      int
	Members    int
	Committed  int
	InProgress int
	Waiting    int
	Failed     int
	RolledBack int
	Declined   int
	Cancelled  int
	Unassigned int
	Skipped    int
	Target     int // devices the phase adds
}

// outcome classes of the progress chart, in drawing order.
var outcomes = []struct{ Label, Class string }{
	{"committed", "o-ok"}, {"in progress", "o-prog"}, {"waiting", "o-wait"}, {"failed", "o-fail"},
	{"rolled back", "o-rb"}, {"declined", "o-decl"}, {"cancelled", "o-canc"}, {"not yet assigned", "o-todo"},
}

func (p phaseCounts) values() []int {
	return []int{p.Committed, p.InProgress, p.Waiting, p.Failed, p.RolledBack, p.Declined, p.Cancelled, p.Unassigned}
}

func newPhaseCounts(ps koshin.PhaseStats, rolledBack int) phaseCounts {
	return phaseCounts{Phase: ps.Phase, Members: ps.Members, Committed: ps.Succeeded, InProgress: ps.InProgress,
		Waiting: ps.Waiting, Failed: max(ps.Failed-rolledBack, 0), RolledBack: rolledBack, Declined: ps.Declined,
		Cancelled: ps.Cancelled, Unassigned: ps.Unassigned, Skipped: ps.Skipped}
}

// progressChart draws one horizontal stacked bar per phase.
func progressChart(phases []phaseCounts) *chart {
	rowH, gap := 26.0, 14.0
	c := &chart{ID: "progress", W: 760, PlotX: 90, PlotW: 650, Title: "Progress by phase",
		Desc: "One bar per phase: devices committed, in progress, waiting, failed, rolled back, declined, cancelled and not yet assigned."}
	c.H = int(float64(len(phases))*(rowH+gap) + 10)
	for _, o := range outcomes {
		c.Legend = append(c.Legend, legendItem{Label: o.Label, Class: o.Class})
	}
	for i, p := range phases {
		y := 6 + float64(i)*(rowH+gap)
		total := max(p.Members-p.Skipped, 1)
		x := float64(c.PlotX)
		b := bar{X: x}
		for j, n := range p.values() {
			if n == 0 {
				continue
			}
			w := float64(n) / float64(total) * float64(c.PlotW)
			b.Segments = append(b.Segments, segment{X: x, Y: y, W: w, H: rowH, Class: outcomes[j].Class,
				Title: fmt.Sprintf("Phase %d: %d %s", p.Phase+1, n, outcomes[j].Label)})
			x += w
		}
		c.Bars = append(c.Bars, b)
		c.YTicks = append(c.YTicks, tick{X: float64(c.PlotX) - 8, Y: y + rowH/2 + 5, Label: "Phase " + strconv.Itoa(p.Phase+1)})
	}
	return c
}
