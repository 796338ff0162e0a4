package control

import (
	"context"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/koshin-ota/koshin/agent"
)

// Notifier tells the user that an update waits for a decision, when the
// settings ask for notifications (CCDS UPE07, EN 303 645 5.3-6). How a
// notification reaches the user is the device's business (a display, an
// app push, a mail), so the agent runs the integrator's command with the
// update in its environment:
//
//	KOSHIN_EVENT          update-pending
//	KOSHIN_TARGET         the release's target name
//	KOSHIN_VERSION        its version
//	KOSHIN_SECURITY       1 for a security update, else 0
//	KOSHIN_ADVISORIES     advisory IDs, comma-separated (EN 303 645 5.3-11)
//	KOSHIN_NOTIFY_TARGET  the notify_target setting ("" for the default)
//
// When the agent detects an unauthorised change it runs the same command
// with KOSHIN_EVENT=tamper-detected, KOSHIN_REASON and KOSHIN_DETAIL
// (EN 303 645 5.7-2: alert the user).
//
// The command runs asynchronously with a timeout; its failure is logged.
type Notifier struct {
	Command  []string
	Settings *Settings
	Timeout  time.Duration // default 30 s
	Log      *slog.Logger
}

// Pending notifies about p (Consent.OnPending).
func (n *Notifier) Pending(p Pending) {
	s := n.Settings.Get()
	if len(n.Command) == 0 || !s.Notifications {
		return
	}
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "KOSHIN_EVENT=update-pending",
		"KOSHIN_TARGET=" + p.Target, "KOSHIN_VERSION=" + p.Version,
		"KOSHIN_SECURITY=" + strconv.Itoa(btoi(p.Security)),
		"KOSHIN_ADVISORIES=" + strings.Join(p.Advisories, ","), "KOSHIN_NOTIFY_TARGET=" + s.NotifyTarget}
	go n.run(env)
}

// Alert notifies about an unauthorised change the agent detected
// (agent.IntegrityConfig.OnAlert).
func (n *Notifier) Alert(f agent.Finding) {
	s := n.Settings.Get()
	if len(n.Command) == 0 || !s.Notifications {
		return
	}
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "KOSHIN_EVENT=tamper-detected",
		"KOSHIN_REASON=" + f.Reason, "KOSHIN_DETAIL=" + f.Detail, "KOSHIN_NOTIFY_TARGET=" + s.NotifyTarget}
	go n.run(env)
}

func (n *Notifier) run(env []string) {
	timeout := n.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.Command[0], n.Command[1:]...)
	cmd.Env = env
	cmd.WaitDelay = time.Second
	if out, err := cmd.CombinedOutput(); err != nil && n.Log != nil {
		n.Log.Warn("update notification failed", "err", err, "output", string(out[:min(len(out), 512)]))
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
