package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/bundle"
	"github.com/koshin-ota/koshin/agent/control"
	"github.com/koshin-ota/koshin/deviceapi"
)

// ctl is what every control command shares: the socket client and the
// output format.
type ctl struct {
	m      *Main
	client *control.Client
	json   bool
}

// ctlFlags parses the common flags of a control command; extra adds its
// own.
func (m *Main) ctlFlags(name string, args []string, extra func(*flag.FlagSet)) (*ctl, *flag.FlagSet, error) {
	var path, socket, tokenFile string
	var asJSON bool
	fs := m.flagSet(name, &path)
	fs.StringVar(&socket, "socket", "", "control socket `path` (default: the configuration's)")
	fs.StringVar(&tokenFile, "token-file", "", "token `file` (default: the configuration's; or KOSHIN_AGENT_TOKEN)")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	if extra != nil {
		extra(fs)
	}
	if err := parse(fs, args); err != nil {
		return nil, nil, err
	}
	cfg, err := m.loadConfig(path, fs)
	if err != nil {
		return nil, nil, err
	}
	if socket == "" {
		socket = cfg.Control.Socket
	}
	if tokenFile == "" {
		tokenFile = cfg.Control.TokenFile
	}
	token := m.Getenv("KOSHIN_AGENT_TOKEN")
	if token == "" {
		if token, err = control.ReadToken(tokenFile); err != nil {
			return nil, nil, fmt.Errorf("control token: %w (root reads it; others get it from the integrator, see KOSHIN_AGENT_TOKEN)", err)
		}
	}
	return &ctl{m: m, client: control.NewClient(socket, token), json: asJSON}, fs, nil
}

func (c *ctl) print(v any, text func()) error {
	if c.json {
		enc := json.NewEncoder(c.m.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text()
	return nil
}

func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	return nil
}

func (m *Main) statusCmd(args []string) error {
	c, fs, err := m.ctlFlags("status", args, nil)
	if err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	st, err := c.client.Status(context.Background())
	if err != nil {
		return err
	}
	return c.print(st, func() { printStatus(c.m, st) })
}

func printStatus(m *Main, st control.Status) {
	w := m.Stdout
	enrolled := "enrolled"
	if !st.Enrolled {
		enrolled = "not enrolled: run koshin-agent enroll"
	}
	fmt.Fprintf(w, "device      %s (%s)\nhardware    %s\n", st.DeviceID, enrolled, st.HardwareID)
	trial := ""
	if st.Boot.Trial {
		trial = ", trial boot"
	}
	fmt.Fprintf(w, "boot        slot %s (next boot %s%s)\n", st.Boot.Booted, st.Boot.Primary, trial)
	for _, name := range slices.Sorted(maps.Keys(st.Installed)) {
		in := st.Installed[name]
		fmt.Fprintf(w, "installed   %s %s (%s)\n", name, in.Version, in.Target)
	}
	if u := st.Update; u != nil {
		fmt.Fprintf(w, "update      %s %s: %s", u.Target, u.Version, u.State)
		if u.Reason != "" {
			fmt.Fprintf(w, " (%s: %s)", u.Reason, u.Detail)
		}
		fmt.Fprintln(w)
	}
	if p := st.Pending; p != nil {
		printPending(m, "pending", *p)
	}
	s := st.Settings
	fmt.Fprintf(w, "settings    updates %s, %s, notifications %s", onOff(s.UpdatesEnabled), mode(s.Automatic), onOff(s.Notifications))
	if s.NotifyTarget != "" {
		fmt.Fprintf(w, " to %s", s.NotifyTarget)
	}
	fmt.Fprintf(w, "\nsecurity    boot integrity %s, %d rejected updates, %d lockouts\n",
		st.Security.BootIntegrity, st.Security.FailedVerifications, st.Security.Lockouts)
	printAlert(m, st.Alert)
	fmt.Fprintf(w, "offline     nonce %s (for offline bundles)\n", st.OfflineNonce)
	if st.Outbox > 0 {
		fmt.Fprintf(w, "reports     %d waiting for the server\n", st.Outbox)
	}
	if st.Busy {
		fmt.Fprintln(w, "(an update step is running; engine state as last seen)")
	}
}

// printAlert shows the unauthorised changes the agent detected and what
// the restriction means (EN 303 645 5.7-2).
func printAlert(m *Main, alert []agent.Finding) {
	w := m.Stdout
	for _, f := range alert {
		fmt.Fprintf(w, "ALERT       unauthorised change detected %s: %s", f.Time.Local().Format(time.DateTime), f.Reason)
		if f.Detail != "" {
			fmt.Fprintf(w, " (%s)", f.Detail)
		}
		fmt.Fprintln(w)
	}
	if len(alert) > 0 {
		fmt.Fprintln(w, "restricted  the agent talks only to the update server and refuses local changes until a verified\n"+
			"            update is committed or root runs koshin-agent clear-alert")
	}
}

func printPending(m *Main, label string, p control.Pending) {
	w := m.Stdout
	fmt.Fprintf(w, "%-11s %s %s", label, p.Target, p.Version)
	if p.Security {
		fmt.Fprint(w, ", security update")
	}
	if len(p.Advisories) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(p.Advisories, ", "))
	}
	switch {
	case p.Blocked == "updates-off":
		fmt.Fprint(w, "; updates are switched off")
	case p.Approved:
		fmt.Fprint(w, "; approved, installs at the next check-in")
	case p.PostponedUntil != nil:
		fmt.Fprintf(w, "; postponed until %s", p.PostponedUntil.Local().Format(time.DateTime))
	case label == "pending":
		fmt.Fprint(w, "; approve, postpone or decline it")
	}
	fmt.Fprintln(w)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func mode(automatic bool) string {
	if automatic {
		return "automatic"
	}
	return "manual"
}

func (m *Main) approveCmd(args []string) error { return m.decide("approve", args) }
func (m *Main) declineCmd(args []string) error { return m.decide("decline", args) }

func (m *Main) decide(verb string, args []string) error {
	var target string
	c, fs, err := m.ctlFlags(verb, args, func(fs *flag.FlagSet) {
		fs.StringVar(&target, "target", "", "the pending release's target `name` (default: whichever is pending)")
	})
	if err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	do := c.client.Approve
	label := "approved"
	if verb == "decline" {
		do, label = c.client.Decline, "declined"
	}
	p, err := do(context.Background(), target)
	if err != nil {
		return err
	}
	return c.print(p, func() { printPending(m, label, p) })
}

func (m *Main) postponeCmd(args []string) error {
	var target, until string
	var dur time.Duration
	c, fs, err := m.ctlFlags("postpone", args, func(fs *flag.FlagSet) {
		fs.StringVar(&target, "target", "", "the pending release's target `name`")
		fs.DurationVar(&dur, "for", 0, "postpone for this `duration` (e.g. 24h)")
		fs.StringVar(&until, "until", "", "postpone until this `time` (RFC 3339)")
	})
	if err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	d := control.Decision{Target: target}
	switch {
	case (dur != 0) == (until != ""):
		return fmt.Errorf("%w: give -for or -until", errUsage)
	case dur != 0:
		d.For = dur.String()
	default:
		t, err := time.Parse(time.RFC3339, until)
		if err != nil {
			return fmt.Errorf("%w: -until: %v", errUsage, err)
		}
		d.Until = &t
	}
	p, err := c.client.Postpone(context.Background(), d)
	if err != nil {
		return err
	}
	return c.print(p, func() { printPending(m, "postponed", p) })
}

// boolFlag is an on/off flag that records whether it was given.
type boolFlag struct{ v **bool }

func (b boolFlag) String() string { return "" }
func (b boolFlag) Set(s string) error {
	switch s {
	case "on", "true", "yes":
		v := true
		*b.v = &v
	case "off", "false", "no":
		v := false
		*b.v = &v
	default:
		return fmt.Errorf("want on or off")
	}
	return nil
}

func (m *Main) settingsCmd(args []string) error {
	var p control.SettingsPatch
	var target string
	var defaults bool
	c, fs, err := m.ctlFlags("settings", args, func(fs *flag.FlagSet) {
		fs.Var(boolFlag{&p.UpdatesEnabled}, "updates", "switch updates `on|off`")
		fs.Var(boolFlag{&p.Automatic}, "automatic", "install automatically (`on`) or after approval (off)")
		fs.Var(boolFlag{&p.Notifications}, "notifications", "notify about pending updates `on|off`")
		fs.StringVar(&target, "notify-target", "", "where notifications go (`name` understood by the notify command)")
		fs.BoolVar(&defaults, "defaults", false, "restore the secure defaults: updates on, automatic, notifications on")
	})
	if err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "notify-target" {
			p.NotifyTarget = &target
		}
	})
	ctx := context.Background()
	var s deviceapi.Settings
	switch {
	case defaults:
		s, err = c.client.RestoreDefaults(ctx)
	case p != (control.SettingsPatch{}):
		s, err = c.client.UpdateSettings(ctx, p)
	default:
		s, err = c.client.Settings(ctx)
	}
	if err != nil {
		return err
	}
	return c.print(s, func() {
		fmt.Fprintf(m.Stdout, "updates %s, %s, notifications %s", onOff(s.UpdatesEnabled), mode(s.Automatic), onOff(s.Notifications))
		if s.NotifyTarget != "" {
			fmt.Fprintf(m.Stdout, " to %s", s.NotifyTarget)
		}
		fmt.Fprintln(m.Stdout)
	})
}

// resetCmd is the factory reset (EN 303 645 5.11-1). It asks for
// confirmation unless -yes, and prints what was deleted (5.11-4).
func (m *Main) resetCmd(args []string) error {
	var yes bool
	c, fs, err := m.ctlFlags("reset", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&yes, "yes", false, "do not ask for confirmation")
	})
	if err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if !yes {
		fmt.Fprint(m.Stdout, "A factory reset erases all user data and the device's keys; the installed software stays.\nType \"erase\" to continue: ")
		line, _ := bufio.NewReader(m.Stdin).ReadString('\n')
		if strings.TrimSpace(line) != "erase" {
			return fmt.Errorf("not confirmed; nothing was deleted")
		}
	}
	res, err := c.client.FactoryReset(context.Background())
	if err != nil {
		return err
	}
	return c.print(res, func() { printReset(m, res) })
}

func printReset(m *Main, res control.ResetResult) {
	w := m.Stdout
	fmt.Fprintln(w, "Factory reset complete. Deleted:")
	for _, d := range res.Deleted {
		fmt.Fprintf(w, "  %s — %s", d.Path, d.What)
		if d.Files > 0 {
			fmt.Fprintf(w, " (%d files, %d bytes)", d.Files, d.Bytes)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Kept:")
	for _, k := range res.Kept {
		fmt.Fprintf(w, "  %s\n", k)
	}
	fmt.Fprintf(w, "New device ID %s; enroll again (koshin-agent enroll) to reconnect to the update server.\n", res.DeviceID)
}

// clearAlertCmd ends the restriction after an unauthorised change, once
// the administrator has examined the device (root only; reported to the
// server with the note).
func (m *Main) clearAlertCmd(args []string) error {
	var note string
	c, fs, err := m.ctlFlags("clear-alert", args, func(fs *flag.FlagSet) {
		fs.StringVar(&note, "note", "", "what you found and did (`text`), reported to the update server")
	})
	if err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	st, err := c.client.ClearAlert(context.Background(), note)
	if err != nil {
		return err
	}
	return c.print(st, func() {
		fmt.Fprintln(m.Stdout, "alert cleared and reported to the update server; a cause that persists is detected again")
	})
}

// installCmd installs an offline bundle. Root lets the agent open the file
// itself; anyone else sends its bytes over the socket.
func (m *Main) installCmd(args []string) error {
	var stream bool
	c, fs, err := m.ctlFlags("install", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&stream, "stream", false, "send the bundle's bytes even as root")
	})
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: install FILE", errUsage)
	}
	path, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return err
	}
	ctx := context.Background()
	var res bundle.Result
	if os.Geteuid() == 0 && !stream {
		res, err = c.client.InstallPath(ctx, path)
	} else {
		f, ferr := os.Open(path)
		if ferr != nil {
			return ferr
		}
		defer f.Close()
		res, err = c.client.InstallStream(ctx, f)
	}
	if err != nil {
		return err
	}
	return c.print(res, func() {
		fmt.Fprintf(m.Stdout, "installed %s %s", res.Target, res.Version)
		if res.Reboot {
			fmt.Fprint(m.Stdout, "; rebooting into it (it is committed once it boots and passes its health check)")
		}
		fmt.Fprintln(m.Stdout)
	})
}
