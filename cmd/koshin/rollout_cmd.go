package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/koshin-ota/koshin"
)

func init() { register((*Main).rolloutCmd) }

// rolloutCmd drives rollouts through the management API.
func (m *Main) rolloutCmd() *cobra.Command {
	var f apiFlags
	c := &cobra.Command{
		Use:   "rollout",
		Short: "Create and steer phased rollouts",
		Long: `Create and steer phased rollouts through the management API. The API
token comes from $KOSHIN_TOKEN (or --token-file), the server from
$KOSHIN_SERVER (or --server), the server CA from $KOSHIN_CA (or --ca).`,
	}
	addAPIFlags(c, &f)
	c.AddCommand(m.rolloutCreateCmd(&f), m.rolloutStatusCmd(&f), m.rolloutListCmd(&f),
		m.rolloutActionCmd(&f, "start", "Start a draft rollout"),
		m.rolloutActionCmd(&f, "pause", "Pause a running rollout (devices in flight continue)"),
		m.rolloutResumeCmd(&f), m.rolloutAbortCmd(&f), m.rolloutAdvanceCmd(&f), m.rolloutApproveCmd(&f))
	return c
}

// rolloutSpecFlags are the flags of `rollout create`.
type rolloutSpecFlags struct {
	name, release, phases, mode string
	groups, tags, hws, devices  []string
	all, manual                 bool
	maxFailures                 int
	maxPercent                  float64
	silence, soak               time.Duration
	windowCron, windowTZ        string
	windowDur                   time.Duration
	rate                        int
	stratify                    []string
}

func (m *Main) rolloutCreateCmd(f *apiFlags) *cobra.Command {
	var s rolloutSpecFlags
	c := &cobra.Command{
		Use:   "create --release NAME (--all | --group G | --tag T | --hardware H | --device ID) --phases LIST",
		Short: "Create a draft rollout and show its phase plan",
		Long: `Create a draft rollout. --phases lists cumulative phase sizes: percentages of
the eligible devices or counts, e.g. "1%,10%,50%,100%" or "5,50,100%".
A failure threshold is required: --max-failures and/or --max-failure-percent
(of the devices started in a phase) halt the rollout. Devices silent for
--silence-timeout count as failed. --soak and --manual apply to every
phase. Modes: automatic, approval, consent, forced, download-only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := s.spec()
			if err != nil {
				return err
			}
			api, err := m.apiClient(*f)
			if err != nil {
				return err
			}
			var res struct {
				Rollout koshin.Rollout
				Plan    struct {
					Eligible        int
					UpdatesDisabled int `json:"updates_disabled"`
					Phases          []struct{ Devices int }
				}
			}
			if err := api.do(cmd.Context(), "POST", "/api/v1/rollouts", spec, &res); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "rollout %d created (draft): %d eligible devices (%d with updates off left out)\n",
				res.Rollout.ID, res.Plan.Eligible, res.Plan.UpdatesDisabled)
			for i, p := range res.Plan.Phases {
				fmt.Fprintf(m.Stdout, "  phase %d: %d devices\n", i+1, p.Devices)
			}
			fmt.Fprintf(m.Stdout, "start it with: koshin rollout start %d\n", res.Rollout.ID)
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&s.name, "name", "", "rollout `NAME`")
	fl.StringVar(&s.release, "release", "", "release `NAME` (imported target)")
	fl.BoolVar(&s.all, "all", false, "target every eligible device")
	fl.StringSliceVar(&s.groups, "group", nil, "target `GROUP` (repeatable)")
	fl.StringSliceVar(&s.tags, "tag", nil, "target devices with `TAG` (repeatable)")
	fl.StringSliceVar(&s.hws, "hardware", nil, "target hardware `ID` (repeatable)")
	fl.StringSliceVar(&s.devices, "device", nil, "target device `ID` (repeatable)")
	fl.StringVar(&s.phases, "phases", "1%,10%,50%,100%", "cumulative phase sizes")
	fl.IntVar(&s.maxFailures, "max-failures", 0, "halt when this many devices of a phase failed")
	fl.Float64Var(&s.maxPercent, "max-failure-percent", 0, "halt when this share of a phase's started devices failed")
	fl.DurationVar(&s.silence, "silence-timeout", 24*time.Hour, "a device silent this long counts as failed")
	fl.DurationVar(&s.soak, "soak", 0, "watch each finished phase this long before advancing")
	fl.BoolVar(&s.manual, "manual", false, "every phase waits for 'koshin rollout advance'")
	fl.StringVar(&s.mode, "mode", "automatic", "automatic, approval, consent, forced or download-only")
	fl.StringVar(&s.windowCron, "window-cron", "", "maintenance window start (cron, e.g. '0 2 * * *')")
	fl.DurationVar(&s.windowDur, "window-duration", 0, "maintenance window length")
	fl.StringVar(&s.windowTZ, "window-tz", "UTC", "maintenance window time zone (IANA)")
	fl.IntVar(&s.rate, "rate", 0, "start at most this many devices per minute (0: no cap)")
	fl.StringSliceVar(&s.stratify, "stratify-tag", nil, "tag that defines sampling strata with the hardware ID (repeatable)")
	c.MarkFlagRequired("release")
	return c
}

// spec builds the request body.
func (s *rolloutSpecFlags) spec() (map[string]any, error) {
	phases, err := parsePhases(s.phases, s.soak, s.manual)
	if err != nil {
		return nil, err
	}
	sel := map[string]any{"all": s.all, "groups": s.groups, "tags": s.tags, "hardware_ids": s.hws, "device_ids": s.devices}
	spec := map[string]any{
		"name": s.name, "release": s.release, "selector": sel, "phases": phases, "mode": s.mode,
		"threshold":       map[string]any{"max_failures": s.maxFailures, "max_failure_percent": s.maxPercent},
		"silence_timeout": int64(s.silence), "rate_per_minute": s.rate, "stratify_tags": s.stratify,
	}
	if s.windowCron != "" {
		spec["window"] = map[string]any{"cron": s.windowCron, "duration": int64(s.windowDur), "time_zone": s.windowTZ}
	}
	return spec, nil
}

// parsePhases reads "1%,10%,50%,100%" or "5,50,100%".
func parsePhases(list string, soak time.Duration, manual bool) ([]map[string]any, error) {
	var out []map[string]any
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		p := map[string]any{"soak": int64(soak), "manual": manual}
		if pct, ok := strings.CutSuffix(item, "%"); ok {
			v, err := strconv.ParseFloat(pct, 64)
			if err != nil {
				return nil, usagef("--phases: %q is not a percentage", item)
			}
			p["percent"] = v
		} else {
			n, err := strconv.Atoi(item)
			if err != nil {
				return nil, usagef("--phases: %q is neither a count nor a percentage", item)
			}
			p["count"] = n
		}
		out = append(out, p)
	}
	return out, nil
}

func rolloutID(arg string) (int64, error) {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id < 1 {
		return 0, usagef("rollout ID %q is not a positive number", arg)
	}
	return id, nil
}

// rolloutActionCmd is a POST /api/v1/rollouts/ID/ACTION without a body.
func (m *Main) rolloutActionCmd(f *apiFlags, action, short string) *cobra.Command {
	return &cobra.Command{
		Use:   action + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return m.rolloutPost(cmd.Context(), f, args[0], action, nil)
		},
	}
}

func (m *Main) rolloutPost(ctx context.Context, f *apiFlags, arg, action string, body any) error {
	id, err := rolloutID(arg)
	if err != nil {
		return err
	}
	api, err := m.apiClient(*f)
	if err != nil {
		return err
	}
	var r koshin.Rollout
	if err := api.do(ctx, "POST", fmt.Sprintf("/api/v1/rollouts/%d/%s", id, action), body, &r); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "rollout %d: %s, phase %d of %d\n", r.ID, r.State, r.Phase+1, len(r.Phases))
	return nil
}

func (m *Main) rolloutResumeCmd(f *apiFlags) *cobra.Command {
	var maxFailures int
	var maxPercent float64
	c := &cobra.Command{
		Use:   "resume ID",
		Short: "Resume a paused or halted rollout, optionally with a new failure threshold",
		Long: `Resume a paused or halted rollout. After a halt, first find out why devices
failed (koshin rollout status, the device events); if the failures are
understood and acceptable, resume with a threshold above the current
count. A halted rollout still over its threshold is refused.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var body any
			if cmd.Flags().Changed("max-failures") || cmd.Flags().Changed("max-failure-percent") {
				body = map[string]any{"threshold": map[string]any{"max_failures": maxFailures, "max_failure_percent": maxPercent}}
			}
			return m.rolloutPost(cmd.Context(), f, args[0], "resume", body)
		},
	}
	c.Flags().IntVar(&maxFailures, "max-failures", 0, "new failure count threshold")
	c.Flags().Float64Var(&maxPercent, "max-failure-percent", 0, "new failure percentage threshold")
	return c
}

func (m *Main) rolloutAbortCmd(f *apiFlags) *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use:   "abort ID",
		Short: "End a rollout for good (devices not started are cancelled)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return m.rolloutPost(cmd.Context(), f, args[0], "abort", map[string]string{"reason": reason})
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit log)")
	return c
}

func (m *Main) rolloutAdvanceCmd(f *apiFlags) *cobra.Command {
	var from int
	c := &cobra.Command{
		Use:   "advance ID",
		Short: "Advance a finished phase (manual phases, or skipping the soak time)",
		Long: `Advance the rollout from its current phase. --from names the phase (1-based)
you have looked at; without it the current phase is read first. The server
refuses if the rollout moved meanwhile, or the phase is unfinished or over
its threshold.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == 0 {
				st, err := m.fetchStatus(cmd.Context(), f, args[0])
				if err != nil {
					return err
				}
				from = st.Rollout.Phase + 1
			}
			return m.rolloutPost(cmd.Context(), f, args[0], "advance", map[string]int{"from": from - 1})
		},
	}
	c.Flags().IntVar(&from, "from", 0, "the current phase, 1-based")
	return c
}

func (m *Main) rolloutApproveCmd(f *apiFlags) *cobra.Command {
	var all bool
	var group string
	var devices []string
	c := &cobra.Command{
		Use:   "approve ID (--all | --group G | --device ID...)",
		Short: "Approve waiting devices of an approval-mode rollout",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := rolloutID(args[0])
			if err != nil {
				return err
			}
			api, err := m.apiClient(*f)
			if err != nil {
				return err
			}
			var res struct{ Approved int }
			body := map[string]any{"all": all, "group": group, "device_ids": devices}
			if err := api.do(cmd.Context(), "POST", fmt.Sprintf("/api/v1/rollouts/%d/approvals", id), body, &res); err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "%d devices approved\n", res.Approved)
			return nil
		},
	}
	c.Flags().BoolVar(&all, "all", false, "approve every waiting device")
	c.Flags().StringVar(&group, "group", "", "approve the waiting devices of `GROUP`")
	c.Flags().StringSliceVar(&devices, "device", nil, "approve device `ID` (repeatable)")
	return c
}

type rolloutStatusView struct {
	Rollout  koshin.Rollout
	Phases   []koshin.PhaseStats
	Decision *koshin.Decision
}

func (m *Main) fetchStatus(ctx context.Context, f *apiFlags, arg string) (*rolloutStatusView, error) {
	id, err := rolloutID(arg)
	if err != nil {
		return nil, err
	}
	api, err := m.apiClient(*f)
	if err != nil {
		return nil, err
	}
	var st rolloutStatusView
	return &st, api.do(ctx, "GET", fmt.Sprintf("/api/v1/rollouts/%d", id), nil, &st)
}

func (m *Main) rolloutStatusCmd(f *apiFlags) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "status ID",
		Short: "Show a rollout's state, per-phase counts and what the engine will do next",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := m.fetchStatus(cmd.Context(), f, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return m.printJSON(st)
			}
			return m.printStatus(st)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func (m *Main) printStatus(st *rolloutStatusView) error {
	r := st.Rollout
	fmt.Fprintf(m.Stdout, "rollout %d %q: release %s, %s, mode %s, phase %d of %d, %d eligible\n",
		r.ID, r.Name, r.ReleaseName, r.State, r.Mode, r.Phase+1, len(r.Phases), r.Eligible)
	if r.HaltReason != "" {
		fmt.Fprintf(m.Stdout, "halted: %s\n", r.HaltReason)
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PHASE\tMEMBERS\tUNASSIGNED\tWAITING\tIN PROGRESS\tSUCCEEDED\tFAILED\tDECLINED\tCANCELLED")
	for _, p := range st.Phases {
		fmt.Fprintf(w, "%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", p.Phase+1, p.Members, p.Unassigned, p.Waiting,
			p.InProgress, p.Succeeded, p.Failed, p.Declined, p.Cancelled)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if d := st.Decision; d != nil {
		fmt.Fprintf(m.Stdout, "next: %s (%s)\n", d.Action, d.Reason)
	}
	return nil
}

func (m *Main) rolloutListCmd(f *apiFlags) *cobra.Command {
	var state string
	c := &cobra.Command{
		Use:   "list",
		Short: "List rollouts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			api, err := m.apiClient(*f)
			if err != nil {
				return err
			}
			var l struct{ Items []koshin.Rollout }
			if err := api.do(cmd.Context(), "GET", "/api/v1/rollouts?limit=1000&state="+state, nil, &l); err != nil {
				return err
			}
			w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tNAME\tRELEASE\tSTATE\tPHASE\tMODE")
			for _, r := range l.Items {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d/%d\t%s\n", r.ID, r.Name, r.ReleaseName, r.State, r.Phase+1, len(r.Phases), r.Mode)
			}
			return w.Flush()
		},
	}
	c.Flags().StringVar(&state, "state", "", "only rollouts in `STATE`")
	return c
}
