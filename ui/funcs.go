package ui

import (
	"encoding/hex"
	"html/template"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/koshin-ota/koshin"
)

var funcs = template.FuncMap{
	"f":         f,
	"short":     shortID,
	"ago":       ago,
	"when":      when,
	"join":      strings.Join,
	"query":     urlQuery,
	"hexs":      hex.EncodeToString,
	"condClass": conditionClass,
	"stateClass": func(s any) string {
		switch s {
		case koshin.RolloutRunning, koshin.AssignmentCommitted, koshin.AssignmentDownloaded, koshin.RolloutCompleted:
			return "ok"
		case koshin.RolloutHalted, koshin.RolloutAborted, koshin.AssignmentFailed, koshin.AssignmentRolledBack,
			koshin.AssignmentRejected, koshin.AssignmentSilentFailed:
			return "bad"
		case koshin.RolloutPaused, koshin.AssignmentAwaitingApproval, koshin.AssignmentPostponed, koshin.AssignmentDeclined:
			return "warn"
		}
		return "info"
	},
	"duration": func(d time.Duration) string {
		if d == 0 {
			return "—"
		}
		return strings.TrimSuffix(strings.TrimSuffix(d.String(), "0s"), "0m")
	},
	"args": func(xs ...any) []any { return xs },
	"inc":  func(i int) int { return i + 1 },
	"last": func(i, n int) bool { return i == n-1 },
	"pct":  func(n, of int) string { return pctString(n, of) },
	"yesno": func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	},
}

// shortID abbreviates a device ID for tables; the full ID is in the title.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12] + "…"
	}
	return id
}

func urlQuery(s string) string { return url.QueryEscape(s) }

// ago is a coarse relative time.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return itoa(int(d/time.Minute)) + " min ago"
	case d < 48*time.Hour:
		return itoa(int(d/time.Hour)) + " h ago"
	}
	return itoa(int(d/(24*time.Hour))) + " days ago"
}

func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func itoa(n int) string { return strconv.Itoa(n) }

func pctString(n, of int) string {
	if of == 0 {
		return "0%"
	}
	p := float64(n) * 100 / float64(of)
	if p > 0 && p < 1 {
		return "<1%"
	}
	return strconv.Itoa(int(p+0.5)) + "%"
}
