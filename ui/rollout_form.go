package ui

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/koshin-ota/koshin"
)

// rolloutForm is the create form's fields as typed, so that a refused form
// comes back with everything the operator entered.
type rolloutForm struct {
	Name, Release, Target                  string
	Groups, Tags, Hardware, Devices        string
	Phases, Soak                           string
	Manual                                 bool
	MaxFailures, MaxFailurePercent         string
	Silence, Rate, Mode, Stratify          string
	WindowCron, WindowDuration, WindowZone string
	Start                                  bool
	Error                                  string
	Field                                  string // the field the error is about
	Releases                               []*koshin.Release
	Modes                                  []koshin.RolloutMode
}

var rolloutModes = []koshin.RolloutMode{koshin.ModeAutomatic, koshin.ModeApproval, koshin.ModeConsent, koshin.ModeForced, koshin.ModeDownloadOnly}

func defaultRolloutForm() *rolloutForm {
	return &rolloutForm{Target: "all", Phases: "1%, 10%, 50%, 100%", Soak: "0s", MaxFailures: "", MaxFailurePercent: "5",
		Silence: "24h", Rate: "0", Mode: string(koshin.ModeAutomatic), Start: true, WindowZone: "UTC"}
}

// newRollout shows the create form.
func (u *UI) newRollout(w http.ResponseWriter, r *http.Request, s *session) error {
	f := defaultRolloutForm()
	if rel := r.URL.Query().Get("release"); rel != "" {
		f.Release = rel
	}
	return u.renderRolloutForm(w, r, s, http.StatusOK, f)
}

func (u *UI) renderRolloutForm(w http.ResponseWriter, r *http.Request, s *session, status int, f *rolloutForm) error {
	rels, err := u.Store.FindReleases(r.Context(), koshin.ReleaseFilter{Limit: koshin.MaxLimit})
	if err != nil {
		return err
	}
	f.Releases, f.Modes = rels, rolloutModes
	u.render(w, r, status, "rollout_new", &view{Title: "New rollout", Nav: "rollouts", S: s, Data: f})
	return nil
}

func readRolloutForm(r *http.Request) *rolloutForm {
	v := r.PostForm
	get := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	return &rolloutForm{Name: get("name"), Release: get("release"), Target: get("target"), Groups: get("groups"),
		Tags: get("tags"), Hardware: get("hardware"), Devices: get("devices"), Phases: get("phases"), Soak: get("soak"),
		Manual: v.Get("manual") == "yes", MaxFailures: get("max_failures"), MaxFailurePercent: get("max_failure_percent"),
		Silence: get("silence"), Rate: get("rate"), Mode: get("mode"), Stratify: get("stratify"),
		WindowCron: get("window_cron"), WindowDuration: get("window_duration"), WindowZone: get("window_zone"),
		Start: v.Get("start") == "yes"}
}

// formError is a problem with one field of the form.
type formError struct{ Field, Message string }

func (e *formError) Error() string { return e.Message }

func fieldErr(field, format string, args ...any) error {
	return &formError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// spec turns the form into the management API's rollout definition. It
// checks what only the form can get wrong (numbers, durations, lists);
// the API validates the rest and its messages are shown as they are.
func (f *rolloutForm) spec() (map[string]any, error) {
	if f.Release == "" {
		return nil, fieldErr("release", "Choose the release to roll out.")
	}
	sel := map[string]any{}
	switch f.Target {
	case "all":
		sel["all"] = true
	case "selection":
		add := func(key, s string) {
			if l := splitList(s); len(l) > 0 {
				sel[key] = l
			}
		}
		add("groups", f.Groups)
		add("tags", f.Tags)
		add("hardware_ids", f.Hardware)
		add("device_ids", f.Devices)
		if len(sel) == 0 {
			return nil, fieldErr("groups", "Name at least one group, tag, hardware ID or device, or target all devices.")
		}
	default:
		return nil, fieldErr("target", "Choose which devices the rollout targets.")
	}
	phases, err := f.phases()
	if err != nil {
		return nil, err
	}
	th := map[string]any{}
	if f.MaxFailures != "" {
		n, err := strconv.Atoi(f.MaxFailures)
		if err != nil || n < 0 {
			return nil, fieldErr("max_failures", "Maximum failures must be a whole number of devices.")
		}
		th["max_failures"] = n
	}
	if f.MaxFailurePercent != "" {
		p, err := strconv.ParseFloat(f.MaxFailurePercent, 64)
		if err != nil || p < 0 || p > 100 {
			return nil, fieldErr("max_failure_percent", "Maximum failure percentage must be a number from 0 to 100.")
		}
		th["max_failure_percent"] = p
	}
	silence, err := parseDuration("silence", "Silence timeout", f.Silence)
	if err != nil {
		return nil, err
	}
	rate := 0
	if f.Rate != "" {
		if rate, err = strconv.Atoi(f.Rate); err != nil || rate < 0 {
			return nil, fieldErr("rate", "The rate must be a whole number of devices per minute (0 for no limit).")
		}
	}
	spec := map[string]any{"name": f.Name, "release": f.Release, "selector": sel, "phases": phases, "threshold": th,
		"silence_timeout": silence, "rate_per_minute": rate, "mode": f.Mode}
	if st := splitList(f.Stratify); len(st) > 0 {
		spec["stratify_tags"] = st
	}
	if f.WindowCron != "" {
		d, err := parseDuration("window_duration", "Window duration", f.WindowDuration)
		if err != nil {
			return nil, err
		}
		spec["window"] = map[string]any{"cron": f.WindowCron, "duration": d, "time_zone": f.WindowZone}
	} else if f.WindowDuration != "" {
		return nil, fieldErr("window_cron", "A maintenance window needs a cron expression, e.g. 0 2 * * * for 02:00 daily.")
	}
	return spec, nil
}

// phases parses "1%, 10%, 50%, 100%" or "2, 6, 100%": a percentage of the
// eligible devices or a device count, cumulative.
func (f *rolloutForm) phases() ([]map[string]any, error) {
	soak, err := parseDuration("soak", "Soak time", f.Soak)
	if err != nil {
		return nil, err
	}
	items := splitList(f.Phases)
	if len(items) == 0 {
		return nil, fieldErr("phases", "Give at least one phase, e.g. 1%%, 10%%, 100%%.")
	}
	if len(items) > koshin.MaxPhases {
		return nil, fieldErr("phases", "A rollout has at most %d phases.", koshin.MaxPhases)
	}
	var out []map[string]any
	for i, it := range items {
		p := map[string]any{"soak": soak}
		if f.Manual && i < len(items)-1 {
			p["manual"] = true
		}
		if pct, ok := strings.CutSuffix(it, "%"); ok {
			v, err := strconv.ParseFloat(pct, 64)
			if err != nil || v <= 0 || v > 100 {
				return nil, fieldErr("phases", "Phase %d: %q is not a percentage from 0 to 100.", i+1, it)
			}
			p["percent"] = v
		} else {
			n, err := strconv.Atoi(it)
			if err != nil || n <= 0 {
				return nil, fieldErr("phases", "Phase %d: %q is neither a percentage (10%%) nor a device count.", i+1, it)
			}
			p["count"] = n
		}
		out = append(out, p)
	}
	return out, nil
}

func parseDuration(field, name, s string) (time.Duration, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fieldErr(field, "%s must be a duration such as 30m, 2h or 24h.", name)
	}
	return d, nil
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(c rune) bool { return c == ',' || c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == ';' })
}

// createRollout creates the rollout through the management API and, when
// asked, starts it. A refused form comes back with the message next to
// the fields.
func (u *UI) createRollout(w http.ResponseWriter, r *http.Request, s *session) error {
	f := readRolloutForm(r)
	spec, err := f.spec()
	if err != nil {
		var fe *formError
		errors.As(err, &fe)
		f.Error, f.Field = fe.Message, fe.Field
		return u.renderRolloutForm(w, r, s, formRefused, f)
	}
	var created struct {
		Rollout *koshin.Rollout `json:"rollout"`
	}
	if err := u.call(r, s.token, "POST", "/api/v1/rollouts", spec, &created); err != nil {
		ae, ok := err.(*apiError)
		if !ok || ae.Status == http.StatusForbidden || ae.Status == http.StatusUnauthorized || ae.Status == http.StatusTooManyRequests {
			return err
		}
		f.Error = ae.Message
		return u.renderRolloutForm(w, r, s, formRefused, f)
	}
	id := created.Rollout.ID
	msg := fmt.Sprintf("Rollout %d created as a draft.", id)
	if f.Start {
		if err := u.start(r, s, id); err != nil {
			flash(w, fmt.Sprintf("!Rollout %d was created but not started: %s", id, err.Error()))
			http.Redirect(w, r, rolloutURL(id), http.StatusSeeOther)
			return nil
		}
		msg = fmt.Sprintf("Rollout %d created and started.", id)
	}
	u.forgetFleet()
	flash(w, msg)
	http.Redirect(w, r, rolloutURL(id), http.StatusSeeOther)
	return nil
}

func (u *UI) start(r *http.Request, s *session, id int64) error {
	err := u.call(r, s.token, "POST", fmt.Sprintf("/api/v1/rollouts/%d/start", id), nil, nil)
	if ae, ok := err.(*apiError); ok {
		return errors.New(ae.Message)
	}
	return err
}
