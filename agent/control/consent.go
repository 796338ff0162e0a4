package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/deviceapi"
)

const consentFile = "consent.json"

// DefaultMaxPostpone bounds how far a user may postpone an update: the
// user may delay a security update, not turn postponing into a silent way
// of never installing it (that is what decline, reported to the server,
// is for).
const DefaultMaxPostpone = 30 * 24 * time.Hour

// maxDeclined bounds the remembered declined releases.
const maxDeclined = 32

var (
	// ErrNoPending: no update waits for a decision (or not the one named).
	ErrNoPending = errors.New("control: no such pending update")
	// ErrForced: the administrator made the update mandatory (CCDS UPD11).
	ErrForced = errors.New("control: the administrator made this update mandatory")
	// ErrBadPostpone: the postponement is in the past or too far ahead.
	ErrBadPostpone = errors.New("control: postponement out of range")
)

// consentState is persisted in consent.json.
type consentState struct {
	Pending *Pending `json:"pending,omitempty"`
	// Approved, Declined and Postponed name releases by SHA-256, so a
	// decision never carries over to another release.
	Approved       string    `json:"approved,omitempty"`
	Declined       []string  `json:"declined,omitempty"`
	Postponed      string    `json:"postponed,omitempty"`
	PostponedUntil time.Time `json:"postponed_until,omitzero"`
}

// Consent decides, for the engine, whether to install an assigned update
// now (agent.Config.Approve), and records the user's decisions.
type Consent struct {
	fs       agent.StateFS
	settings *Settings
	now      func() time.Time
	log      *slog.Logger
	// MaxPostpone defaults to DefaultMaxPostpone.
	MaxPostpone time.Duration
	// OnPending, if set, is called (without locks held) when an update
	// becomes pending; the server uses it to notify the user.
	OnPending func(Pending)

	mu sync.Mutex
	st consentState
}

// OpenConsent loads the recorded decisions; a damaged file is dropped
// (the update becomes pending again: the safe side for consent) and
// reported as an error for the log.
func OpenConsent(fsys agent.StateFS, settings *Settings, now func() time.Time, log *slog.Logger) (*Consent, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Consent{fs: fsys, settings: settings, now: now, log: log, MaxPostpone: DefaultMaxPostpone}
	b, err := fsys.ReadFile(consentFile)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read update decisions: %w", err)
	}
	var st consentState
	if err := json.Unmarshal(b, &st); err != nil || len(st.Declined) > maxDeclined {
		return c, fmt.Errorf("update decisions damaged, dropped: %v", err)
	}
	c.st = st
	return c, nil
}

// Approve is the engine's hook (agent.Config.Approve), called with the
// engine's lock held: it only reads and records state, never calls the
// engine.
func (c *Consent) Approve(_ context.Context, t agent.Target, mode deviceapi.Mode) bool {
	c.mu.Lock()
	ok, offered := c.decide(t, mode)
	p := c.st.Pending
	c.mu.Unlock()
	if offered && p != nil && c.OnPending != nil {
		c.OnPending(*p)
	}
	return ok
}

// decide returns whether to install t now and whether t just became
// pending.
func (c *Consent) decide(t agent.Target, mode deviceapi.Mode) (install, offered bool) {
	s := c.settings.Get()
	sha := t.SHA256()
	switch {
	case !s.UpdatesEnabled: // CCDS UPE05
		return false, c.offer(t, mode, "updates-off")
	case mode == deviceapi.ModeForced: // CCDS UPD11
		c.installing(sha)
		return true, false
	case slices.Contains(c.st.Declined, sha):
		return false, false
	case c.st.Postponed == sha && c.now().Before(c.st.PostponedUntil):
		return false, false
	case c.st.Postponed == sha:
		// A postponement is consent for later: "not now, at that time".
		c.installing(sha)
		return true, false
	case c.st.Approved == sha:
		c.installing(sha)
		return true, false
	case (mode == deviceapi.ModeAutomatic || mode == "") && s.Automatic: // EN 303 645 5.3-6
		c.installing(sha)
		return true, false
	}
	return false, c.offer(t, mode, "")
}

// offer records t as pending and reports whether it is new.
func (c *Consent) offer(t agent.Target, mode deviceapi.Mode, blocked string) bool {
	sha := t.SHA256()
	fresh := c.st.Pending == nil || c.st.Pending.SHA256 != sha
	if fresh {
		c.st.Pending = &Pending{Target: t.Name, Version: t.Custom.Version, SHA256: sha,
			Component: t.Custom.Component, Security: t.Custom.Security,
			Advisories: slices.Clone(t.Custom.Advisories), FirstSeen: c.now().UTC()}
	}
	if !fresh && c.st.Pending.Mode == mode && c.st.Pending.Blocked == blocked {
		return false
	}
	c.st.Pending.Mode, c.st.Pending.Blocked = mode, blocked
	c.save()
	return fresh
}

// installing forgets the decisions about sha: it is about to install.
func (c *Consent) installing(sha string) {
	if c.st.Pending != nil && c.st.Pending.SHA256 == sha {
		c.st.Pending = nil
	}
	if c.st.Approved == sha {
		c.st.Approved = ""
	}
	if c.st.Postponed == sha {
		c.st.Postponed, c.st.PostponedUntil = "", time.Time{}
	}
	c.save()
}

// save persists the state; a failure is logged and the decision kept in
// memory, since refusing to decide would stop updates on a full disk.
func (c *Consent) save() {
	b, err := json.Marshal(c.st)
	if err == nil {
		err = c.fs.WriteFile(consentFile, b)
	}
	if err != nil {
		c.log.Error("persist update decisions", "err", err)
	}
}

// Pending returns the update waiting for a decision, if any.
func (c *Consent) Pending() *Pending {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pendingView()
}

func (c *Consent) pendingView() *Pending {
	if c.st.Pending == nil {
		return nil
	}
	p := *c.st.Pending
	p.Advisories = slices.Clone(p.Advisories)
	p.Approved = c.st.Approved == p.SHA256
	if c.st.Postponed == p.SHA256 && c.now().Before(c.st.PostponedUntil) {
		until := c.st.PostponedUntil
		p.PostponedUntil = &until
	}
	return &p
}

// pending returns the stored pending update if target names it ("" names
// whatever is pending). The caller holds mu.
func (c *Consent) pending(target string) (*Pending, error) {
	p := c.st.Pending
	if p == nil || (target != "" && target != p.Target) {
		return nil, ErrNoPending
	}
	return p, nil
}

// UserApprove approves the pending update: it installs at the next
// check-in that still offers it.
func (c *Consent) UserApprove(target string) (Pending, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.pending(target)
	if err != nil {
		return Pending{}, err
	}
	c.st.Approved = p.SHA256
	c.st.Declined = slices.DeleteFunc(c.st.Declined, func(s string) bool { return s == p.SHA256 })
	if c.st.Postponed == p.SHA256 {
		c.st.Postponed, c.st.PostponedUntil = "", time.Time{}
	}
	c.save()
	return *c.pendingView(), nil
}

// UserPostpone postpones the pending update until until, which must lie
// in the future and at most MaxPostpone ahead. It then installs at the
// first check-in after until that still offers it, without asking again;
// declining is how the user says no.
func (c *Consent) UserPostpone(target string, until time.Time) (Pending, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.pending(target)
	if err != nil {
		return Pending{}, err
	}
	if p.Mode == deviceapi.ModeForced {
		return Pending{}, ErrForced
	}
	now := c.now()
	if !until.After(now) || until.Sub(now) > c.maxPostpone() {
		return Pending{}, fmt.Errorf("%w: until must be after now and at most %s ahead", ErrBadPostpone, c.maxPostpone())
	}
	c.st.Postponed, c.st.PostponedUntil = p.SHA256, until.UTC()
	if c.st.Approved == p.SHA256 {
		c.st.Approved = ""
	}
	c.save()
	return *c.pendingView(), nil
}

func (c *Consent) maxPostpone() time.Duration {
	if c.MaxPostpone <= 0 {
		return DefaultMaxPostpone
	}
	return c.MaxPostpone
}

// UserDecline declines the pending update: it is not installed unless the
// administrator forces it, and the decline is reported to the server.
func (c *Consent) UserDecline(target string) (Pending, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.pending(target)
	if err != nil {
		return Pending{}, err
	}
	if p.Mode == deviceapi.ModeForced {
		return Pending{}, ErrForced
	}
	declined := *p
	if !slices.Contains(c.st.Declined, p.SHA256) {
		c.st.Declined = append(c.st.Declined, p.SHA256)
		if len(c.st.Declined) > maxDeclined {
			c.st.Declined = c.st.Declined[1:]
		}
	}
	if c.st.Approved == p.SHA256 {
		c.st.Approved = ""
	}
	c.st.Pending = nil
	c.save()
	return declined, nil
}

// Forget drops every decision: restoring secure defaults (declines and
// postponements weaken the device's security) and factory reset.
func (c *Consent) Forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st = consentState{Pending: c.st.Pending}
	c.save()
}

// clear drops every decision and the pending update (factory reset).
func (c *Consent) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st = consentState{}
	c.save()
}

// dropInstalled clears a pending update that got installed meanwhile (by
// an offline bundle, or a forced rollout).
func (c *Consent) dropInstalled(installed map[string]agent.Installed) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.st.Pending
	if p != nil && installed[p.Component].SHA256 == p.SHA256 {
		c.st.Pending = nil
		c.save()
	}
}
